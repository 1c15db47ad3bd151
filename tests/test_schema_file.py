"""The committed SDL is the schema the code serves."""

import copy
import dataclasses
from pathlib import Path
from typing import Any

from graphql import Visitor, parse, print_ast, visit

from gateway.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    expected = build_schema().as_str() + "\n"
    assert SCHEMA_FILE.read_text() == expected, (
        "schema.graphql is out of date: run `partner-billing export-schema -o schema.graphql`"
    )


class _DropDescriptions(Visitor):
    def enter(self, node: Any, *_args: Any) -> Any:
        if getattr(node, "description", None) is None:
            return None  # keep the node
        # A copy without it (graphql-core 3.3's nodes are frozen dataclasses, 3.2's are not).
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            return dataclasses.replace(node, description=None)
        clone = copy.copy(node)
        clone.description = None
        return clone


def signatures(sdl: str) -> str:
    """The SDL without descriptions, so each field's arguments print on its line."""
    return print_ast(visit(parse(sdl), _DropDescriptions()))


def test_contract_names_are_all_present() -> None:
    sdl = signatures(SCHEMA_FILE.read_text())
    for name in (
        "viewer: Viewer!",
        "customers(first: Int = null, after: String = null): CustomerConnection!",
        "catalog(actingCustomer: ID!): [Plan!]!",
        "products(actingCustomer: ID!): [Product!]!",
        "billingDetails(actingCustomer: ID!): BillingDetails!",
        "order(actingCustomer: ID!, id: ID!): Order",
        "licensePurchaseSummary(actingCustomer: ID!, input: BuyLicensesInput!): OrderSummary!",
        "storageUpgradeSummary(actingCustomer: ID!, input: UpgradeStorageInput!): OrderSummary!",
        "addPaymentMethod(actingCustomer: ID!, input: AddPaymentMethodInput!): PaymentMethodPayload!",
        "setPrimaryPaymentMethod(actingCustomer: ID!, paymentMethodId: ID!): PaymentMethodPayload!",
        "removePaymentMethod(actingCustomer: ID!, paymentMethodId: ID!): PaymentMethodPayload!",
        "buyLicenses(actingCustomer: ID!, input: BuyLicensesInput!): OrderPayload!",
        "upgradeStorage(actingCustomer: ID!, input: UpgradeStorageInput!): OrderPayload!",
        "paymentConfirmation(actingCustomer: ID!, orderId: ID!): OrderStatusEvent!",
        "orderStatusChanged(actingCustomer: ID = null, after: String = null): OrderStatusEvent!",
    ):
        assert name in sdl, name

"""Shared GraphQL documents and small steps for the API tests.

Everything here talks to the gateway the way a client would (GraphQL over real
HTTP); the only shortcuts are reading rows for assertions, pinning the billing
clock and moving a product's paid period so proration is deterministic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func
from sqlmodel import SQLModel, select

from billing.onboarding import DemoTenant
from billing.periods import BillingPeriod, first_period
from models import Product
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLClient, serve_gateway

# -- one gateway per test module ------------------------------------------------
#
# Starting and stopping a gateway costs more than most tests here, so a module
# shares one (its tests run in the module's event loop: see SHARED_LOOP). Every
# test seeds its own partner, so tests never see each other's data; the billing
# clock is put back after each test.

SHARED_LOOP = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayServer]:
    async with serve_gateway(sqlite_settings(tmp_path_factory.mktemp("gateway"))) as server:
        yield server


@pytest.fixture(name="gateway")
def shared_gateway(module_gateway: GatewayServer) -> Iterator[GatewayServer]:
    """The module's gateway, with the real billing clock restored afterwards."""
    clock = module_gateway.runtime.services.clock
    yield module_gateway
    module_gateway.runtime.services.clock = clock


ROLES = ("PARTNER_OWNER", "PARTNER_FINANCE_ADMIN", "PARTNER_ADMIN")
BILLING_ROLES = ("PARTNER_OWNER", "PARTNER_FINANCE_ADMIN")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})

MONEY = "amount minorUnits currency"
SUMMARY_FIELDS = f"""
    lines {{ description quantity unitPrice {{ {MONEY} }} amount {{ {MONEY} }} }}
    subtotal {{ {MONEY} }}
    total {{ {MONEY} }}
    billingInterval
"""
ORDER_FIELDS = f"""
    id kind status failureReason clientSecret createdAt updatedAt
    total {{ {MONEY} }}
    summary {{ {SUMMARY_FIELDS} }}
    paymentMethod {{ id brand last4 isPrimary }}
"""
PAYMENT_METHOD_FIELDS = "id brand last4 expMonth expYear isPrimary"
PRODUCT_FIELDS = """
    id billingInterval totalLicenses assignedLicenses availableLicenses storageGb
    status currentPeriodStart currentPeriodEnd renewsAt cancelAtPeriodEnd scheduledLicenses
    plan { id name kind storageGb }
"""

PRODUCTS = f"query Products($c: ID!) {{ products(actingCustomer: $c) {{ {PRODUCT_FIELDS} }} }}"
BILLING_DETAILS = f"""
query BillingDetails($c: ID!) {{
  billingDetails(actingCustomer: $c) {{
    customer {{ id name }}
    paymentMethods {{ {PAYMENT_METHOD_FIELDS} }}
    primaryPaymentMethod {{ {PAYMENT_METHOD_FIELDS} }}
  }}
}}
"""
ORDER = f"query Order($c: ID!, $id: ID!) {{ order(actingCustomer: $c, id: $id) {{ {ORDER_FIELDS} }} }}"
ORDERS = f"""
query Orders($c: ID!, $first: Int, $after: String, $status: OrderStatus) {{
  orders(actingCustomer: $c, first: $first, after: $after, status: $status) {{
    edges {{ cursor node {{ id status kind total {{ {MONEY} }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
LICENSE_SUMMARY = f"""
query LicenseSummary($c: ID!, $input: BuyLicensesInput!) {{
  licensePurchaseSummary(actingCustomer: $c, input: $input) {{ {SUMMARY_FIELDS} }}
}}
"""
STORAGE_SUMMARY = f"""
query StorageSummary($c: ID!, $input: UpgradeStorageInput!) {{
  storageUpgradeSummary(actingCustomer: $c, input: $input) {{ {SUMMARY_FIELDS} }}
}}
"""
USER_ERRORS = "userErrors { field code message }"
ADD_PAYMENT_METHOD = f"""
mutation AddPaymentMethod($c: ID!, $input: AddPaymentMethodInput!) {{
  addPaymentMethod(actingCustomer: $c, input: $input) {{ paymentMethod {{ {PAYMENT_METHOD_FIELDS} }} {USER_ERRORS} }}
}}
"""
SET_PRIMARY = f"""
mutation SetPrimary($c: ID!, $pm: ID!) {{
  setPrimaryPaymentMethod(actingCustomer: $c, paymentMethodId: $pm) {{
    paymentMethod {{ {PAYMENT_METHOD_FIELDS} }} {USER_ERRORS}
  }}
}}
"""
REMOVE_PAYMENT_METHOD = f"""
mutation RemovePaymentMethod($c: ID!, $pm: ID!) {{
  removePaymentMethod(actingCustomer: $c, paymentMethodId: $pm) {{
    paymentMethod {{ {PAYMENT_METHOD_FIELDS} }} {USER_ERRORS}
  }}
}}
"""
BUY_LICENSES = f"""
mutation BuyLicenses($c: ID!, $input: BuyLicensesInput!) {{
  buyLicenses(actingCustomer: $c, input: $input) {{ order {{ {ORDER_FIELDS} }} {USER_ERRORS} }}
}}
"""
UPGRADE_STORAGE = f"""
mutation UpgradeStorage($c: ID!, $input: UpgradeStorageInput!) {{
  upgradeStorage(actingCustomer: $c, input: $input) {{ order {{ {ORDER_FIELDS} }} {USER_ERRORS} }}
}}
"""

SCHEDULE_LICENSE_CHANGE = f"""
mutation ScheduleLicenseChange($c: ID!, $input: ScheduleLicenseChangeInput!) {{
  scheduleLicenseChange(actingCustomer: $c, input: $input) {{ product {{ {PRODUCT_FIELDS} }} {USER_ERRORS} }}
}}
"""
CANCEL_PRODUCT = f"""
mutation CancelProduct($c: ID!, $input: ProductInput!) {{
  cancelProduct(actingCustomer: $c, input: $input) {{ product {{ {PRODUCT_FIELDS} }} {USER_ERRORS} }}
}}
"""
RESUME_PRODUCT = f"""
mutation ResumeProduct($c: ID!, $input: ProductInput!) {{
  resumeProduct(actingCustomer: $c, input: $input) {{ product {{ {PRODUCT_FIELDS} }} {USER_ERRORS} }}
}}
"""


def owner(gateway: GatewayServer, tenant: DemoTenant, role: str = "PARTNER_OWNER") -> GraphQLClient:
    return gateway.client(tenant.tokens[role])


async def products(client: GraphQLClient, customer_id: str) -> list[dict[str, Any]]:
    data = await client.data(PRODUCTS, {"c": customer_id})
    result: list[dict[str, Any]] = data["products"]
    return result


async def only_product(client: GraphQLClient, customer_id: str) -> dict[str, Any]:
    """The single product a seeded demo customer holds."""
    held = await products(client, customer_id)
    assert len(held) == 1, held
    return held[0]


async def product(client: GraphQLClient, customer_id: str, product_id: str) -> dict[str, Any]:
    return next(p for p in await products(client, customer_id) if p["id"] == product_id)


async def storage_products_of(client: GraphQLClient, customer_id: str) -> list[dict[str, Any]]:
    return [p for p in await products(client, customer_id) if p["plan"]["kind"] == "CLOUD_STORAGE"]


async def add_card(
    client: GraphQLClient, customer_id: str, token: str = "pm_card_visa", *, make_primary: bool = False
) -> dict[str, Any]:
    """Add a payment method, asserting it was accepted; returns it."""
    data = await client.data(
        ADD_PAYMENT_METHOD, {"c": customer_id, "input": {"paymentMethodToken": token, "makePrimary": make_primary}}
    )
    payload = data["addPaymentMethod"]
    assert payload["userErrors"] == [], payload
    method: dict[str, Any] = payload["paymentMethod"]
    return method


async def billing_details(client: GraphQLClient, customer_id: str) -> dict[str, Any]:
    data = await client.data(BILLING_DETAILS, {"c": customer_id})
    result: dict[str, Any] = data["billingDetails"]
    return result


async def buy(client: GraphQLClient, customer_id: str, product_id: str, quantity: int, **extra: Any) -> dict[str, Any]:
    """The buyLicenses payload (order and userErrors)."""
    data = await client.data(
        BUY_LICENSES, {"c": customer_id, "input": {"productId": product_id, "quantity": quantity, **extra}}
    )
    payload: dict[str, Any] = data["buyLicenses"]
    return payload


async def upgrade(
    client: GraphQLClient, customer_id: str, plan_id: str, licenses: int, interval: str = "MONTHLY", **extra: Any
) -> dict[str, Any]:
    """The upgradeStorage payload (order and userErrors)."""
    variables = {
        "c": customer_id,
        "input": {"planId": plan_id, "licenses": licenses, "billingInterval": interval, **extra},
    }
    payload: dict[str, Any] = (await client.data(UPGRADE_STORAGE, variables))["upgradeStorage"]
    return payload


async def get_order(client: GraphQLClient, customer_id: str, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = (await client.data(ORDER, {"c": customer_id, "id": order_id}))["order"]
    return order


async def wait_for_status(
    client: GraphQLClient,
    customer_id: str,
    order_id: str,
    statuses: frozenset[str] | set[str] = TERMINAL,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll ``order`` until its status is one of ``statuses`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        order = await get_order(client, customer_id, order_id)
        if order["status"] in statuses:
            return order
        assert time.monotonic() < deadline, f"order {order_id} stuck in {order['status']}"
        await asyncio.sleep(0.02)


async def buy_and_settle(
    client: GraphQLClient, customer_id: str, product_id: str, quantity: int, **extra: Any
) -> dict[str, Any]:
    """buyLicenses, asserting no userErrors, then the order once it is terminal."""
    payload = await buy(client, customer_id, product_id, quantity, **extra)
    assert payload["userErrors"] == [], payload
    return await wait_for_status(client, customer_id, payload["order"]["id"])


async def upgrade_and_settle(
    client: GraphQLClient, customer_id: str, plan_id: str, licenses: int, interval: str = "MONTHLY", **extra: Any
) -> dict[str, Any]:
    payload = await upgrade(client, customer_id, plan_id, licenses, interval, **extra)
    assert payload["userErrors"] == [], payload
    return await wait_for_status(client, customer_id, payload["order"]["id"])


def pin_clock(gateway: GatewayServer, moment: datetime) -> None:
    """Make the billing clock (proration, fulfilment) read ``moment``."""
    assert moment.tzinfo is not None
    gateway.runtime.services.clock = lambda: moment


async def set_period(
    gateway: GatewayServer, product_id: str, start: datetime, end: datetime | None = None
) -> BillingPeriod:
    """Make ``start`` to ``end`` (default: one interval) the product's paid
    period, billed from ``start``; returns it."""
    async with gateway.runtime.db.orm(write=True) as session:
        row = await session.get(Product, product_id)
        assert row is not None, product_id
        period = first_period(start, row.billing_interval) if end is None else BillingPeriod(start, end)
        row.period_anchor = start
        row.current_period_start, row.current_period_end = period.start, period.end
        row.next_renewal_at = period.end
        session.add(row)
    return period


async def count_rows(gateway: GatewayServer, model: type[SQLModel], *conditions: Any) -> int:
    async with gateway.runtime.db.orm() as session:
        query = select(func.count()).select_from(model)
        for condition in conditions:
            query = query.where(condition)
        return int((await session.exec(query)).one())


async def rows(gateway: GatewayServer, model: type[SQLModel], *conditions: Any) -> list[Any]:
    async with gateway.runtime.db.orm() as session:
        query = select(model)
        for condition in conditions:
            query = query.where(condition)
        return list((await session.exec(query)).all())


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]

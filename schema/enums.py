"""The contract's enums, shared with the models so values never drift, each
value described for GraphiQL's Docs pane."""

from __future__ import annotations

from enum import Enum

import strawberry

from models import BillingInterval, OrderKind, OrderStatus, PartnerRole, PlanKind, ProductStatus

__all__ = ["BillingInterval", "OrderKind", "OrderStatus", "PartnerRole", "PlanKind", "ProductStatus", "describe_enum"]


def describe_enum(cls: type[Enum], description: str, values: dict[str, str]) -> None:
    """Register ``cls`` as a GraphQL enum with a description on it and on each
    value (the models' enums are plain Python enums; the descriptions are the
    API's business). tests/test_schema_docs.py fails on a value left out."""
    strawberry.enum(cls, description=description)
    for value in cls.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values.get(value.name)


describe_enum(
    PartnerRole,
    "What a partner's staff member may do (see each value).",
    {
        "PARTNER_OWNER": "Everything: products, catalogue, customers, billing details, orders and purchases.",
        "PARTNER_FINANCE_ADMIN": "Everything an owner may do with customers' products and billing.",
        "PARTNER_ADMIN": "Products, catalogue and customers only; billing details, orders and billing mutations "
        "are FORBIDDEN.",
    },
)
describe_enum(
    BillingInterval,
    "How often a product is billed.",
    {"MONTHLY": "Billed every calendar month.", "YEARLY": "Billed every year, at the yearly price."},
)
describe_enum(
    PlanKind,
    "What a plan sells.",
    {
        "BACKUP": "Backup licenses; buy more with buyLicenses.",
        "CLOUD_STORAGE": "Cloud storage per license; buy or change the plan with upgradeStorage.",
    },
)
describe_enum(
    OrderKind,
    "What an order buys.",
    {
        "LICENSE_PURCHASE": "Licenses added to a product (buyLicenses), charged pro rata for the current period.",
        "STORAGE_UPGRADE": "A cloud-storage plan bought or changed (upgradeStorage), a full period less a credit "
        "for the unused time on the plan it replaces.",
        "RENEWAL": "The next period of a product, charged by the gateway at the period's end (scheduled licenses "
        "or current ones, at the plan's price for the interval) to the customer's primary payment method.",
    },
)
describe_enum(
    OrderStatus,
    "Where an order's payment stands. Status only moves forward; SUCCEEDED, FAILED and CANCELED are final.",
    {
        "PENDING": "Recorded; the payment has not been answered yet.",
        "PROCESSING": "The provider accepted the payment and is confirming it.",
        "REQUIRES_ACTION": "The card needs 3-D Secure: finish it with Stripe.js and the order's `clientSecret`.",
        "SUCCEEDED": "Paid; the licenses or storage have been added (final).",
        "FAILED": "Declined or failed; nothing changed but the order, see `failureReason` (final).",
        "CANCELED": "Abandoned before payment; nothing changed (final).",
    },
)
describe_enum(
    ProductStatus,
    "Whether a product is paid for and renewing.",
    {
        "ACTIVE": "Paid for the current period; renews at its end unless set to cancel.",
        "PAST_DUE": "The renewal charge failed; it is retried (RENEWAL_RETRY_DAYS) and the product is canceled "
        "after the last failure. buyLicenses answers PRODUCT_NOT_ACTIVE meanwhile.",
        "CANCELED": "No longer billed or renewed; buyLicenses answers PRODUCT_NOT_ACTIVE.",
    },
)

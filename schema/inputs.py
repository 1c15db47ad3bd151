"""Mutation and summary inputs, each field described with its rules."""

from __future__ import annotations

import strawberry

from models import BillingInterval

__all__ = [
    "AddPaymentMethodInput",
    "BuyLicensesInput",
    "ProductInput",
    "ScheduleLicenseChangeInput",
    "UpgradeStorageInput",
]


_PAYMENT_METHOD = (
    "The card to charge (`pm_…`, one of the acting customer's; else PAYMENT_METHOD_NOT_FOUND). Omitted: the "
    "primary card (none: NO_PAYMENT_METHOD)."
)
_IDEMPOTENCY_KEY = (
    "1 to 255 characters you choose per intended purchase (else BAD_USER_INPUT). Repeating a request with the "
    "same key returns the first order and never charges twice; the same key with different input is "
    "IDEMPOTENCY_KEY_REUSED."
)


@strawberry.input(description="A card to add to the acting customer.")
class AddPaymentMethodInput:
    payment_method_token: str = strawberry.field(
        description="A payment method token made client-side by Stripe.js (`pm_…`); never a card number. With the "
        "sandbox provider, Stripe's test tokens: `pm_card_visa`, `pm_card_chargeDeclined`…"
    )
    make_primary: bool | None = strawberry.field(
        default=False, description="Make it the primary card. The customer's first card is primary anyway."
    )


@strawberry.input(description="Licenses to add to a product the customer holds.")
class BuyLicensesInput:
    product_id: strawberry.ID = strawberry.field(
        description="The acting customer's product (`prd_…`); any other id is PRODUCT_NOT_FOUND."
    )
    quantity: int = strawberry.field(description="Licenses to add: 1 to 10,000, else INVALID_QUANTITY.")
    payment_method_id: strawberry.ID | None = strawberry.field(default=None, description=_PAYMENT_METHOD)
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY_KEY)


@strawberry.input(
    description="A cloud-storage plan to buy, or to move the customer's storage product to (plan, licenses and "
    "interval together)."
)
class UpgradeStorageInput:
    plan_id: strawberry.ID = strawberry.field(
        description="An active CLOUD_STORAGE plan of the catalogue (`plan_…`); else PLAN_NOT_FOUND."
    )
    licenses: int = strawberry.field(
        description="Total licenses on the new plan: 1 to 10,000 and at least the licenses assigned now, else "
        "INVALID_QUANTITY."
    )
    billing_interval: BillingInterval = strawberry.field(description="Billing interval of the new plan.")
    payment_method_id: strawberry.ID | None = strawberry.field(default=None, description=_PAYMENT_METHOD)
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY_KEY)


@strawberry.input(description="A new total of licenses for a product, from its next period.")
class ScheduleLicenseChangeInput:
    product_id: strawberry.ID = strawberry.field(
        description="The acting customer's product (`prd_…`); any other id is PRODUCT_NOT_FOUND."
    )
    total_licenses: int = strawberry.field(
        description="Total licenses from the next period: 1 to the current total (more: buyLicenses, now), else "
        "INVALID_QUANTITY; not below assignedLicenses, else LICENSES_IN_USE."
    )


@strawberry.input(description="A product of the acting customer.")
class ProductInput:
    product_id: strawberry.ID = strawberry.field(
        description="The acting customer's product (`prd_…`); any other id is PRODUCT_NOT_FOUND."
    )

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


@strawberry.input
class AddPaymentMethodInput:
    payment_method_token: str = strawberry.field(description="A token made client-side by Stripe.js.")
    make_primary: bool | None = False


@strawberry.input
class BuyLicensesInput:
    product_id: strawberry.ID
    quantity: int = strawberry.field(description="Licenses to add to the product (1 to 10,000).")
    payment_method_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the customer's primary payment method."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="Repeat a request safely: the same key returns the first order."
    )


@strawberry.input
class UpgradeStorageInput:
    plan_id: strawberry.ID
    licenses: int
    billing_interval: BillingInterval
    payment_method_id: strawberry.ID | None = None
    idempotency_key: str | None = None


@strawberry.input
class ScheduleLicenseChangeInput:
    product_id: strawberry.ID
    total_licenses: int = strawberry.field(
        description="Total licenses from the next period: 1 to the current total, not below assignedLicenses."
    )


@strawberry.input
class ProductInput:
    product_id: strawberry.ID

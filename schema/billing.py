"""Payment methods and a customer's billing details."""

from __future__ import annotations

import strawberry

from billing.payment_methods import PaymentMethodView
from schema.node import Node
from schema.tenancy import Customer

__all__ = ["BillingDetails", "PaymentMethod"]


@strawberry.type(
    description="A card on file for a customer (`pm_…`). The gateway never sees card numbers: only the "
    "provider's token, the brand, the last four digits and the expiry."
)
class PaymentMethod(Node):
    brand: str = strawberry.field(
        description='The card network as the provider names it: "visa", "mastercard", "amex"…'
    )
    last4: str = strawberry.field(description='The last four digits of the card number, e.g. "4242".')
    exp_month: int = strawberry.field(description="Expiry month, 1 to 12.")
    exp_year: int = strawberry.field(description="Expiry year, four digits.")
    is_primary: bool = strawberry.field(
        description="Whether purchases without a `paymentMethodId` are charged to this card; at most one per customer."
    )

    @classmethod
    def of(cls, view: PaymentMethodView) -> PaymentMethod:
        return cls(
            id=strawberry.ID(view.id),
            brand=view.brand,
            last4=view.last4,
            exp_month=view.exp_month,
            exp_year=view.exp_year,
            is_primary=view.is_primary and view.removed_at is None,
        )


@strawberry.type(description="A customer's billing page: the customer and the cards on file.")
class BillingDetails:
    customer: Customer = strawberry.field(description="The acting customer.")
    payment_methods: list[PaymentMethod] = strawberry.field(
        description="Every card on file, oldest first; removed cards are not listed."
    )
    primary_payment_method: PaymentMethod | None = strawberry.field(
        description="The card purchases use by default; null when the customer has none."
    )

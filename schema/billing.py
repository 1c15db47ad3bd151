"""Payment methods and a customer's billing details."""

from __future__ import annotations

import strawberry

from billing.payment_methods import PaymentMethodView
from schema.tenancy import Customer

__all__ = ["BillingDetails", "PaymentMethod"]


@strawberry.type(description="A card on file. The gateway never sees card numbers.")
class PaymentMethod:
    id: strawberry.ID
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_primary: bool

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


@strawberry.type
class BillingDetails:
    customer: Customer
    payment_methods: list[PaymentMethod]
    primary_payment_method: PaymentMethod | None

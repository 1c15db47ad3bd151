"""Payment methods and a customer's billing details."""

from __future__ import annotations

import strawberry

from models import PaymentMethod as PaymentMethodRow
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
    def of(cls, row: PaymentMethodRow) -> PaymentMethod:
        return cls(
            id=strawberry.ID(row.id),
            brand=row.brand,
            last4=row.last4,
            exp_month=row.exp_month,
            exp_year=row.exp_year,
            is_primary=row.is_primary and row.removed_at is None,
        )


@strawberry.type
class BillingDetails:
    customer: Customer
    payment_methods: list[PaymentMethod]
    primary_payment_method: PaymentMethod | None

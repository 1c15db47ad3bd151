from __future__ import annotations

import strawberry

from billing.money import format_minor

__all__ = ["Money"]


@strawberry.type(
    description="An exact amount of money, never a float: compute with `minorUnits` (an integer), show `amount`."
)
class Money:
    amount: str = strawberry.field(
        description='Decimal string with two decimals, "-" for a credit: "12.50", "0.00", "-3.20".'
    )
    minor_units: int = strawberry.field(description="The same amount in the currency's minor unit: 1250 for 12.50.")
    currency: str = strawberry.field(description='ISO 4217 code, upper case, e.g. "USD".')

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        return cls(amount=format_minor(minor), minor_units=minor, currency=currency)

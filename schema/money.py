from __future__ import annotations

import strawberry

from billing.money import format_minor

__all__ = ["Money"]


@strawberry.type(description='An exact amount: `amount` is a decimal string such as "12.50".')
class Money:
    amount: str
    minor_units: int
    currency: str

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        return cls(amount=format_minor(minor), minor_units=minor, currency=currency)

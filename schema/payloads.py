from __future__ import annotations

import strawberry

from billing.errors import UserError as DomainUserError
from schema.billing import PaymentMethod
from schema.catalog import Product
from schema.orders import Order

__all__ = ["OrderPayload", "PaymentMethodPayload", "ProductPayload", "UserError"]


@strawberry.type(description="A business outcome of a mutation, e.g. CARD_DECLINED.")
class UserError:
    field: list[str] | None
    code: str
    message: str

    @classmethod
    def of(cls, error: DomainUserError) -> UserError:
        return cls(field=list(error.field) if error.field else None, code=error.code, message=error.message)


@strawberry.type
class PaymentMethodPayload:
    payment_method: PaymentMethod | None
    user_errors: list[UserError]


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[UserError]

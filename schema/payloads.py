from __future__ import annotations

import strawberry

from billing.errors import UserError as DomainUserError
from schema.billing import PaymentMethod
from schema.catalog import Product
from schema.orders import Order

__all__ = ["OrderPayload", "PaymentMethodPayload", "ProductPayload", "UserError"]


@strawberry.type(
    description="Why a mutation did not do (all of) what was asked: an expected business outcome, not a fault. "
    "Each mutation's description lists the codes it returns; README's \"Error codes\" explains them all."
)
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input at fault, e.g. ["input", "quantity"]; null when no single input is.'
    )
    code: str = strawberry.field(
        description="Stable, machine-readable: INVALID_QUANTITY, PRODUCT_NOT_FOUND, PLAN_NOT_FOUND, "
        "PAYMENT_METHOD_NOT_FOUND, NO_PAYMENT_METHOD, CARD_DECLINED, IDEMPOTENCY_KEY_REUSED, ORDER_IN_PROGRESS, "
        "DOWNGRADE_NOT_SUPPORTED, NOTHING_TO_CHANGE, INVALID_PAYMENT_METHOD_TOKEN, PAYMENT_PROVIDER_UNAVAILABLE, "
        "LICENSES_IN_USE, PRODUCT_NOT_ACTIVE."
    )
    message: str = strawberry.field(description="For people; may change between versions, so match on `code`.")

    @classmethod
    def of(cls, error: DomainUserError) -> UserError:
        return cls(field=list(error.field) if error.field else None, code=error.code, message=error.message)


@strawberry.type(description="The outcome of a payment-method mutation.")
class PaymentMethodPayload:
    payment_method: PaymentMethod | None = strawberry.field(
        description="The payment method as changed; null when `userErrors` says why nothing changed."
    )
    user_errors: list[UserError] = strawberry.field(description="Empty when the change was made.")


@strawberry.type(description="The outcome of a purchase.")
class OrderPayload:
    order: Order | None = strawberry.field(
        description="The order placed (or, for a repeated idempotencyKey, the first one). Null when no order was "
        "placed; a declined payment returns the FAILED order and CARD_DECLINED."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Empty when the order was placed and its payment not refused."
    )


@strawberry.type(description="The outcome of a plan change (scheduleLicenseChange, cancelProduct, resumeProduct).")
class ProductPayload:
    product: Product | None = strawberry.field(
        description="The product as changed; null when `userErrors` says why nothing changed."
    )
    user_errors: list[UserError] = strawberry.field(description="Empty when the change was made.")

"""Payment providers behind one interface: the built-in sandbox and Stripe."""

from payments.provider import (
    AttachedCard,
    CardDeclined,
    ChargeRequest,
    PaymentError,
    PaymentEventHandler,
    PaymentMethodTokenInvalid,
    PaymentOutcome,
    PaymentProvider,
    PaymentStatus,
    ProviderUnavailable,
)

__all__ = [
    "AttachedCard",
    "CardDeclined",
    "ChargeRequest",
    "PaymentError",
    "PaymentEventHandler",
    "PaymentMethodTokenInvalid",
    "PaymentOutcome",
    "PaymentProvider",
    "PaymentStatus",
    "ProviderUnavailable",
]

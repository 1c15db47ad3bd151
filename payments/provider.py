"""The contract every payment provider fulfils.

Exceptions::

    PaymentError                 anything the provider refused or could not do
    ├── CardDeclined             the card was declined (on attach or on charge)
    ├── PaymentMethodTokenInvalid the token names no usable payment method
    └── ProviderUnavailable      network error, timeout, 5xx: safe to retry later

A provider never sees card numbers: only tokens made client-side. Every call is
async and never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

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


class PaymentError(Exception):
    """A provider call that did not do what was asked."""


class CardDeclined(PaymentError):
    """The issuer declined the card."""


class PaymentMethodTokenInvalid(PaymentError):
    """The token is unknown to the provider or cannot be used."""


class ProviderUnavailable(PaymentError):
    """The provider could not be reached or failed; the outcome is unknown."""


class PaymentStatus(StrEnum):
    """Where a payment stands, in the contract's vocabulary."""

    PROCESSING = "PROCESSING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


@dataclass(frozen=True)
class AttachedCard:
    """A payment method the provider holds for a customer (no card data)."""

    provider_ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ChargeRequest:
    """One charge for one order.

    ``idempotency_key`` is derived from the order id and committed with the order
    before the provider is called, so charging the same order twice (a retry
    after a crash) finds the first payment instead of making a second.
    """

    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    provider_customer_ref: str
    payment_method_ref: str
    idempotency_key: str


@dataclass(frozen=True)
class PaymentOutcome:
    """The provider's view of one payment (a PaymentIntent)."""

    payment_ref: str
    order_id: str | None
    status: PaymentStatus
    # Kept out of repr so logging an outcome never prints the secret.
    client_secret: str | None = field(default=None, repr=False)
    failure_reason: str | None = None
    declined: bool = False


PaymentEventHandler = Callable[[PaymentOutcome], Awaitable[None]]
"""Called with a payment's new state when the provider reports a change (the
sandbox's own confirmation, or a verified Stripe webhook)."""


class PaymentProvider(Protocol):
    name: str

    async def start(self, on_event: PaymentEventHandler) -> None:
        """Begin delivering asynchronous payment updates to ``on_event``."""

    async def aclose(self) -> None:
        """Stop background work and release connections."""

    async def ensure_customer(self, *, customer_id: str, name: str, existing_ref: str | None) -> str:
        """Return the provider's customer for ``customer_id``, creating it if needed."""

    async def attach_payment_method(self, *, provider_customer_ref: str, token: str) -> AttachedCard:
        """Attach the tokenised method to the customer; raises CardDeclined or
        PaymentMethodTokenInvalid."""

    async def set_default_payment_method(self, *, provider_customer_ref: str, payment_method_ref: str) -> None:
        """Make the method the customer's default for off-session charges."""

    async def detach_payment_method(self, *, payment_method_ref: str) -> None:
        """Forget the method at the provider."""

    async def charge(self, request: ChargeRequest) -> PaymentOutcome:
        """Charge the order off-session. Safe to call again for the same order:
        the second call returns the first payment's current state."""

    async def retrieve(self, *, payment_ref: str | None, order_id: str) -> PaymentOutcome | None:
        """The payment's current state, found by reference or by order id
        (None when the provider never saw a payment for the order)."""

    async def cancel(self, *, payment_ref: str) -> PaymentOutcome:
        """Cancel a payment still awaiting the customer (3-D Secure never
        finished); returns its state afterwards, which may be a success that
        won the race."""

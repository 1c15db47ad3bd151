"""The built-in sandbox provider: Stripe's test tokens, no network.

It behaves like Stripe where the gateway can tell: declines on attach or on
charge, 3-D Secure (``REQUIRES_ACTION`` with a client secret, completed through
:meth:`SandboxPaymentProvider.authenticate`), and confirmation that arrives
later as an event (``SANDBOX_CONFIRM_DELAY_MS``) through the same handler a
Stripe webhook reaches. Its payments are rows in the gateway's database, so a
restarted gateway can still settle them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import select

from models import SandboxPayment, SandboxPaymentMethod, new_id
from models.base import utcnow
from models.database import Database
from payments.provider import (
    AttachedCard,
    CardDeclined,
    ChargeRequest,
    PaymentError,
    PaymentEventHandler,
    PaymentMethodTokenInvalid,
    PaymentOutcome,
    PaymentStatus,
)
from payments.test_cards import TEST_CARDS, ChargeBehaviour

__all__ = ["SandboxPaymentProvider"]

log = logging.getLogger(__name__)

_DECLINE_MESSAGE = "Your card was declined."
_STATUS = {
    "processing": PaymentStatus.PROCESSING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "succeeded": PaymentStatus.SUCCEEDED,
    "failed": PaymentStatus.FAILED,
    "canceled": PaymentStatus.CANCELED,
}


def _outcome(payment: SandboxPayment) -> PaymentOutcome:
    status = _STATUS[payment.status]
    return PaymentOutcome(
        payment_ref=payment.id,
        order_id=payment.order_id,
        status=status,
        client_secret=payment.client_secret if status is PaymentStatus.REQUIRES_ACTION else None,
        failure_reason=payment.failure_reason,
        declined=status is PaymentStatus.FAILED,
    )


class SandboxPaymentProvider:
    name = "sandbox"

    def __init__(self, db: Database, *, confirm_delay_ms: int = 300, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._delay = confirm_delay_ms / 1000
        self._clock = clock
        self._on_event: PaymentEventHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, on_event: PaymentEventHandler) -> None:
        self._on_event = on_event

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def ensure_customer(self, *, customer_id: str, name: str, existing_ref: str | None) -> str:
        return existing_ref or f"sbx_cus_{customer_id}"

    async def attach_payment_method(self, *, provider_customer_ref: str, token: str) -> AttachedCard:
        card = TEST_CARDS.get(token)
        if card is None:
            raise PaymentMethodTokenInvalid(f"No such PaymentMethod: {token!r}")
        if card.declined_on_attach:
            raise CardDeclined(_DECLINE_MESSAGE)
        method = SandboxPaymentMethod(id=new_id("sbx_pm"), token=token, provider_customer_ref=provider_customer_ref)
        async with self._db.write() as session:
            session.add(method)
        return AttachedCard(
            provider_ref=method.id, brand=card.brand, last4=card.last4, exp_month=12, exp_year=self._clock().year + 3
        )

    async def set_default_payment_method(self, *, provider_customer_ref: str, payment_method_ref: str) -> None:
        return None  # the sandbox charges the method each order names

    async def detach_payment_method(self, *, payment_method_ref: str) -> None:
        async with self._db.write() as session:
            method = await session.get(SandboxPaymentMethod, payment_method_ref)
            if method is not None:
                method.detached = True
                session.add(method)

    async def charge(self, request: ChargeRequest) -> PaymentOutcome:
        async with self._db.write() as session:
            existing = (
                await session.exec(select(SandboxPayment).where(SandboxPayment.order_id == request.order_id))
            ).first()
            if existing is not None:
                return _outcome(existing)
            method = await session.get(SandboxPaymentMethod, request.payment_method_ref)
            payment_id = new_id("sbx_pi")
            payment = SandboxPayment(
                id=payment_id,
                order_id=request.order_id,
                amount_minor=request.amount_minor,
                currency=request.currency,
                payment_method_ref=request.payment_method_ref,
                status="processing",
                client_secret=f"{payment_id}_secret_{secrets.token_urlsafe(16)}",
                created_at=self._clock(),
            )
            behaviour = TEST_CARDS[method.token].on_charge if method and not method.detached else None
            if behaviour is None:
                payment.status, payment.failure_reason = "failed", "The payment method is no longer available."
            elif behaviour is ChargeBehaviour.DECLINED:
                payment.status, payment.failure_reason = "failed", _DECLINE_MESSAGE
            elif behaviour is ChargeBehaviour.REQUIRES_ACTION:
                payment.status = "requires_action"
            session.add(payment)
        if payment.status == "processing":
            self._confirm_later(payment.id)
        return _outcome(payment)

    async def retrieve(self, *, payment_ref: str | None, order_id: str) -> PaymentOutcome | None:
        async with self._db.read() as session:
            payment = (await session.exec(select(SandboxPayment).where(SandboxPayment.order_id == order_id))).first()
        if payment is None:
            return None
        overdue = payment.created_at + timedelta(seconds=self._delay + 5) < self._clock()
        if payment.status == "processing" and overdue:
            # The gateway stopped before confirming; the sandbox's "bank" settles now.
            payment = await self._settle(payment.id, "succeeded") or payment
        return _outcome(payment)

    async def cancel(self, *, payment_ref: str) -> PaymentOutcome:
        async with self._db.write() as session:
            payment = await session.get(SandboxPayment, payment_ref)
            if payment is None:
                raise PaymentError(f"No such payment: {payment_ref!r}")
            if payment.status == "requires_action":
                payment.status = "canceled"
                session.add(payment)
        return _outcome(payment)

    async def authenticate(self, *, client_secret: str, success: bool) -> PaymentOutcome | None:
        """Complete (or fail) 3-D Secure, as Stripe.js would with the client secret."""
        async with self._db.write() as session:
            payment = (
                await session.exec(select(SandboxPayment).where(SandboxPayment.client_secret == client_secret))
            ).first()
            if payment is None or payment.status != "requires_action":
                return None
            if success:
                payment.status = "processing"
            else:
                payment.status, payment.failure_reason = "failed", "3-D Secure authentication failed."
            session.add(payment)
        if success:
            self._confirm_later(payment.id)
        outcome = _outcome(payment)
        await self._emit(outcome)
        return outcome

    def _confirm_later(self, payment_id: str) -> None:
        task = asyncio.create_task(self._confirm(payment_id), name=f"sandbox-confirm-{payment_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, payment_id: str) -> None:
        # Even with no delay the confirmation comes later, as Stripe's would.
        await asyncio.sleep(self._delay)
        payment = await self._settle(payment_id, "succeeded")
        if payment is not None:
            await self._emit(_outcome(payment))

    async def _settle(self, payment_id: str, status: str) -> SandboxPayment | None:
        async with self._db.write() as session:
            payment = await session.get(SandboxPayment, payment_id)
            if payment is None or payment.status != "processing":
                return None
            payment.status = status
            session.add(payment)
        return payment

    async def _emit(self, outcome: PaymentOutcome) -> None:
        if self._on_event is None:
            return
        try:
            await self._on_event(outcome)
        except Exception:
            # Reconciliation settles the order later from retrieve().
            log.exception("sandbox: delivering the outcome of %s failed", outcome.payment_ref)

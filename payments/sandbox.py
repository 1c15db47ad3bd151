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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from models import new_id
from models.base import utcnow
from models.database import Database, Query, Row, UniqueViolation, insert_into
from models.tables import sandbox_payment_methods, sandbox_payments
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

_PAYMENT = (
    sandbox_payments.c.id,
    sandbox_payments.c.order_id,
    sandbox_payments.c.status,
    sandbox_payments.c.client_secret,
    sandbox_payments.c.failure_reason,
    sandbox_payments.c.created_at,
)
_PAYMENT_OF_ORDER = Query(select(*_PAYMENT).where(sandbox_payments.c.order_id == bindparam("order_id")))
_PAYMENT_BY_ID = Query(select(*_PAYMENT).where(sandbox_payments.c.id == bindparam("id")))
_PAYMENT_BY_SECRET = Query(select(*_PAYMENT).where(sandbox_payments.c.client_secret == bindparam("secret")))
_INSERT_PAYMENT = Query(insert_into(sandbox_payments))
_MOVE_PAYMENT = Query(
    update(sandbox_payments)
    .where(sandbox_payments.c.id == bindparam("id"), sandbox_payments.c.status == bindparam("from_status"))
    .values(status=bindparam("status"), failure_reason=bindparam("failure_reason"))
    .returning(*_PAYMENT)
)
_METHOD_TOKEN = Query(
    select(sandbox_payment_methods.c.token, sandbox_payment_methods.c.detached).where(
        sandbox_payment_methods.c.id == bindparam("id")
    )
)
_INSERT_METHOD = Query(insert_into(sandbox_payment_methods))
_DETACH_METHOD = Query(
    update(sandbox_payment_methods).where(sandbox_payment_methods.c.id == bindparam("id")).values(detached=True)
)


@dataclass(frozen=True, slots=True)
class _Payment:
    id: str
    order_id: str
    status: str
    client_secret: str
    failure_reason: str | None
    created_at: datetime


def _outcome(payment: _Payment) -> PaymentOutcome:
    status = _STATUS[payment.status]
    return PaymentOutcome(
        payment_ref=payment.id,
        order_id=payment.order_id,
        status=status,
        client_secret=payment.client_secret if status is PaymentStatus.REQUIRES_ACTION else None,
        failure_reason=payment.failure_reason,
        declined=status is PaymentStatus.FAILED,
    )


def _payment(row: Row) -> _Payment:
    return _Payment(*row)


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

    async def drain(self) -> None:
        """Wait until the confirmations already under way have been delivered
        (a command about to exit, which would otherwise leave them to
        reconciliation)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def ensure_customer(self, *, customer_id: str, name: str, existing_ref: str | None) -> str:
        return existing_ref or f"sbx_cus_{customer_id}"

    async def attach_payment_method(self, *, provider_customer_ref: str, token: str) -> AttachedCard:
        card = TEST_CARDS.get(token)
        if card is None:
            raise PaymentMethodTokenInvalid(f"No such PaymentMethod: {token!r}")
        if card.declined_on_attach:
            raise CardDeclined(_DECLINE_MESSAGE)
        method_id = new_id("sbx_pm")
        async with self._db.connection() as conn:
            await conn.write(
                _INSERT_METHOD, id=method_id, token=token, provider_customer_ref=provider_customer_ref, detached=False
            )
        return AttachedCard(
            provider_ref=method_id, brand=card.brand, last4=card.last4, exp_month=12, exp_year=self._clock().year + 3
        )

    async def set_default_payment_method(self, *, provider_customer_ref: str, payment_method_ref: str) -> None:
        return None  # the sandbox charges the method each order names

    async def detach_payment_method(self, *, payment_method_ref: str) -> None:
        async with self._db.connection() as conn:
            await conn.write(_DETACH_METHOD, id=payment_method_ref)

    async def charge(self, request: ChargeRequest) -> PaymentOutcome:
        async with self._db.connection() as conn:
            existing = await conn.first(_PAYMENT_OF_ORDER, order_id=request.order_id)
            if existing is not None:
                return _outcome(_payment(existing))
            method = await conn.first(_METHOD_TOKEN, id=request.payment_method_ref)
            behaviour = TEST_CARDS[method[0]].on_charge if method and not method[1] else None
            payment_id = new_id("sbx_pi")
            status, failure = "processing", None
            if behaviour is None:
                status, failure = "failed", "The payment method is no longer available."
            elif behaviour is ChargeBehaviour.DECLINED:
                status, failure = "failed", _DECLINE_MESSAGE
            elif behaviour is ChargeBehaviour.REQUIRES_ACTION:
                status = "requires_action"
            payment = _Payment(
                payment_id,
                request.order_id,
                status,
                f"{payment_id}_secret_{secrets.token_urlsafe(16)}",
                failure,
                self._clock(),
            )
            try:
                await conn.write(
                    _INSERT_PAYMENT,
                    id=payment.id,
                    order_id=payment.order_id,
                    amount_minor=request.amount_minor,
                    currency=request.currency,
                    payment_method_ref=request.payment_method_ref,
                    status=payment.status,
                    client_secret=payment.client_secret,
                    failure_reason=payment.failure_reason,
                    created_at=payment.created_at,
                )
            except UniqueViolation:
                # The same order charged concurrently: the first payment stands.
                row = await conn.first(_PAYMENT_OF_ORDER, order_id=request.order_id)
                assert row is not None
                return _outcome(_payment(row))
        if payment.status == "processing":
            self._confirm_later(payment.id)
        return _outcome(payment)

    async def retrieve(self, *, payment_ref: str | None, order_id: str) -> PaymentOutcome | None:
        async with self._db.connection() as conn:
            row = await conn.first(_PAYMENT_OF_ORDER, order_id=order_id)
        if row is None:
            return None
        payment = _payment(row)
        overdue = payment.created_at + timedelta(seconds=self._delay + 5) < self._clock()
        if payment.status == "processing" and overdue:
            # The gateway stopped before confirming; the sandbox's "bank" settles now.
            payment = await self._move(payment.id, "processing", "succeeded") or payment
        return _outcome(payment)

    async def cancel(self, *, payment_ref: str) -> PaymentOutcome:
        canceled = await self._move(payment_ref, "requires_action", "canceled")
        if canceled is not None:
            return _outcome(canceled)
        async with self._db.connection() as conn:
            row = await conn.first(_PAYMENT_BY_ID, id=payment_ref)
        if row is None:
            raise PaymentError(f"No such payment: {payment_ref!r}")
        return _outcome(_payment(row))

    async def authenticate(self, *, client_secret: str, success: bool) -> PaymentOutcome | None:
        """Complete (or fail) 3-D Secure, as Stripe.js would with the client secret."""
        async with self._db.connection() as conn:
            row = await conn.first(_PAYMENT_BY_SECRET, secret=client_secret)
        if row is None:
            return None
        if success:
            payment = await self._move(row[0], "requires_action", "processing")
        else:
            payment = await self._move(row[0], "requires_action", "failed", "3-D Secure authentication failed.")
        if payment is None:
            return None  # not awaiting authentication (any more)
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
        payment = await self._move(payment_id, "processing", "succeeded")
        if payment is not None:
            await self._emit(_outcome(payment))

    async def _move(
        self, payment_id: str, from_status: str, status: str, failure: str | None = None
    ) -> _Payment | None:
        """One guarded step of a payment; None if it was not in ``from_status``."""
        async with self._db.connection() as conn:
            rows = await conn.write(
                _MOVE_PAYMENT, id=payment_id, from_status=from_status, status=status, failure_reason=failure
            )
        return _payment(rows[0]) if rows else None

    async def _emit(self, outcome: PaymentOutcome) -> None:
        if self._on_event is None:
            return
        try:
            await self._on_event(outcome)
        except Exception:
            # Reconciliation settles the order later from retrieve().
            log.exception("sandbox: delivering the outcome of %s failed", outcome.payment_ref)

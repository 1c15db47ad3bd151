"""``POST /webhooks/stripe``: verify, deduplicate, re-read, settle.

Each delivery's ``Stripe-Signature`` is checked (with Stripe's five-minute
timestamp tolerance) before anything is read from it. The event itself is only
a hint: the gateway re-reads the PaymentIntent and applies its current state
through the one settlement path, which only ever moves an order forward, so
late, repeated or reordered events cannot undo anything.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import bindparam, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from billing.settlement import apply_payment_outcome
from gateway.runtime import Runtime
from models.base import utcnow
from models.database import Connection, Query, UniqueViolation, insert_into
from models.tables import processed_webhook_events
from observability import metrics
from payments.provider import PaymentError
from payments.stripe_provider import InvalidWebhook, StripePaymentProvider, order_id_of

__all__ = ["stripe_webhook"]

log = logging.getLogger(__name__)

PAYMENT_INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        "payment_intent.amount_capturable_updated",
    }
)


def _answer(status: int, message: str, *, outcome: str) -> Response:
    metrics.webhook_delivered(outcome)
    return JSONResponse({"status": message}, status_code=status)


def _intent_reference(event: Any) -> tuple[str | None, str | None]:
    """(PaymentIntent id, gateway order id) named by the event, if any."""
    intent = getattr(getattr(event, "data", None), "object", None)
    intent_id = getattr(intent, "id", None)
    order_id = order_id_of(intent) if intent is not None else None
    return (intent_id if isinstance(intent_id, str) else None, order_id)


def _event_header(event: Any) -> tuple[str, str] | None:
    """(id, type) of a verified event, or None if the body is not an event."""
    event_id, event_type = getattr(event, "id", None), getattr(event, "type", None)
    if isinstance(event_id, str) and isinstance(event_type, str):
        return event_id, event_type
    return None


_PROCESSED = Query(select(processed_webhook_events.c.id).where(processed_webhook_events.c.id == bindparam("id")))
_MARK_PROCESSED = Query(insert_into(processed_webhook_events))


async def _already_processed(conn: Connection, event_id: str) -> bool:
    return await conn.first(_PROCESSED, id=event_id) is not None


async def _mark_processed(conn: Connection, event_id: str) -> None:
    with contextlib.suppress(UniqueViolation):  # a concurrent redelivery recorded it first
        await conn.write(_MARK_PROCESSED, id=event_id, received_at=utcnow())


async def stripe_webhook(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        async with runtime.db.connection() as conn:
            return await _handle(request, runtime, conn)
    except Exception:
        metrics.webhook_delivered("error")  # answered with INTERNAL by the middleware; Stripe retries
        raise


async def _handle(request: Request, runtime: Runtime, conn: Connection) -> Response:
    provider = runtime.services.provider
    secret = runtime.settings.stripe_webhook_secret
    if not isinstance(provider, StripePaymentProvider) or not secret:
        return _answer(404, "stripe webhooks are not enabled on this gateway", outcome="disabled")
    payload = await request.body()
    try:
        event = provider.verify_webhook(payload, request.headers.get("stripe-signature"), secret)
    except InvalidWebhook as error:
        log.warning("stripe webhook refused: %s", error)
        return _answer(400, str(error), outcome="refused")
    header = _event_header(event)
    if header is None:
        return _answer(400, "body is not a Stripe event", outcome="refused")
    event_id, event_type = header
    if await _already_processed(conn, event_id):
        return _answer(200, "duplicate ignored", outcome="duplicate")
    if event_type not in PAYMENT_INTENT_EVENTS:
        await _mark_processed(conn, event_id)
        return _answer(200, "ignored", outcome="ignored")
    intent_id, order_id = _intent_reference(event)
    if intent_id is None:
        return _answer(400, "payment_intent event without a PaymentIntent", outcome="refused")
    if order_id is None:
        log.info("stripe event %s (%s) names no gateway order", event_id, event_type)
        await _mark_processed(conn, event_id)
        return _answer(200, "no gateway order", outcome="ignored")
    try:
        outcome = await provider.retrieve(payment_ref=intent_id, order_id=order_id)
    except PaymentError as error:
        # Unprocessed: Stripe delivers again, and reconciliation catches up.
        log.warning("stripe event %s: re-reading %s failed (%s)", event_id, intent_id, type(error).__name__)
        return _answer(503, "payment provider unavailable; retry", outcome="unavailable")
    if outcome is not None:
        order = await apply_payment_outcome(runtime.services, conn, outcome)
        if order is None:
            log.info("stripe event %s: order %s is unknown here", event_id, order_id)
    await _mark_processed(conn, event_id)
    return _answer(200, "processed", outcome="processed")

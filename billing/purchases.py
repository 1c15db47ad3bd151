"""Placing orders: quote, record, charge, settle.

1. One write transaction checks the request, prices it and stores the order
   (PENDING) with its lines, an audit entry, its first event and a provider
   idempotency key derived from the order id. It also returns everything the
   charge needs, so nothing is read again.
2. The provider is charged outside any transaction.
3. The answer goes through :func:`billing.settlement.apply_payment_outcome`,
   the same path as the provider's later confirmation.

A replay with the same idempotency key returns the stored order; if that order
never reached the provider (the gateway died in between), the charge resumes
with the same provider key, so it is made at most once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import bindparam, select

from auth.principal import Principal
from billing import audit
from billing.access import lock_acting_customer
from billing.catalog import storage_product_of
from billing.customers import CustomerView, customers_by_id
from billing.errors import BadUserInput, UserError, UserErrors
from billing.orders import ORDER_COLUMNS, OrderView, order_view
from billing.payment_methods import (
    PaymentMethodView,
    ensure_provider_customer,
    find_active_payment_method,
    payment_methods_by_id,
    primary_payment_method,
)
from billing.product_renewal import renewal_in_flight
from billing.quotes import Quote, QuoteLine, license_purchase_quote, storage_upgrade_quote
from billing.services import BillingServices
from billing.settlement import apply_payment_outcome
from events.log import append_event
from models import BillingInterval, OrderKind, OrderStatus, new_id
from models.base import utcnow
from models.database import Connection, Query, UniqueViolation, any_of, insert_into
from models.orders import IN_FLIGHT
from models.tables import order_lines, orders
from payments.provider import ChargeRequest, PaymentError, PaymentOutcome, PaymentStatus, ProviderUnavailable

__all__ = [
    "LicensePurchase",
    "NewOrder",
    "OrderResult",
    "StorageUpgrade",
    "buy_licenses",
    "charge_order",
    "charge_request",
    "insert_order",
    "quote_for",
    "record_order",
    "upgrade_storage",
]

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class LicensePurchase:
    product_id: str
    quantity: int
    payment_method_id: str | None = None
    idempotency_key: str | None = None
    kind: ClassVar[OrderKind] = OrderKind.LICENSE_PURCHASE


@dataclass(frozen=True)
class StorageUpgrade:
    plan_id: str
    licenses: int
    billing_interval: BillingInterval
    payment_method_id: str | None = None
    idempotency_key: str | None = None
    kind: ClassVar[OrderKind] = OrderKind.STORAGE_UPGRADE


Request = LicensePurchase | StorageUpgrade


@dataclass(frozen=True)
class OrderResult:
    order: OrderView
    user_errors: tuple[UserError, ...] = ()


@dataclass(frozen=True)
class NewOrder:
    """A stored PENDING order and what charging it needs."""

    order: OrderView
    customer: CustomerView
    method: PaymentMethodView


def _audit_action(kind: OrderKind) -> str:
    return f"order.{kind.value.lower()}"


def _fingerprint(request: Request) -> str:
    fields = {k: v for k, v in vars(request).items() if k != "idempotency_key"}
    fields["kind"] = type(request).__name__
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _check_idempotency_key(key: str | None) -> None:
    if key is None:
        return
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadUserInput(f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.")
    if not key.isprintable() or not key.encode("utf-8", "replace").decode() == key:
        raise BadUserInput("idempotencyKey must be printable text.")


async def buy_licenses(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, request: LicensePurchase
) -> OrderResult:
    return await _place(services, conn, principal, customer_id, request)


async def upgrade_storage(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, request: StorageUpgrade
) -> OrderResult:
    return await _place(services, conn, principal, customer_id, request)


async def quote_for(services: BillingServices, conn: Connection, customer: CustomerView, request: Request) -> Quote:
    """What ``request`` charges now: the summary queries and the mutations price alike."""
    now = services.clock()
    if isinstance(request, LicensePurchase):
        return await license_purchase_quote(
            conn, customer, product_id=request.product_id, quantity=request.quantity, now=now
        )
    return await storage_upgrade_quote(
        conn, customer, plan_id=request.plan_id, licenses=request.licenses, interval=request.billing_interval, now=now
    )


async def _payment_method(conn: Connection, customer_id: str, chosen: str | None) -> PaymentMethodView:
    if chosen is not None:
        return await find_active_payment_method(conn, customer_id, chosen, field=("input", "paymentMethodId"))
    primary = await primary_payment_method(conn, customer_id)
    if primary is None:
        raise UserErrors(
            UserError(
                "NO_PAYMENT_METHOD",
                "The customer has no primary payment method; add one or choose one.",
                ("input", "paymentMethodId"),
            )
        )
    return primary


_IN_FLIGHT_VALUES = [status.value for status in IN_FLIGHT]
_IN_FLIGHT_FOR_STORAGE = {
    # A plan change waits for every unsettled storage order and license
    # purchase on the storage product; a license purchase on the storage
    # product waits for an unsettled plan change.
    "change": Query(
        select(orders.c.id)
        .where(
            orders.c.customer_id == bindparam("customer_id"),
            any_of(orders.c.status, "in_flight"),
            (orders.c.kind == OrderKind.STORAGE_UPGRADE.value) | (orders.c.product_id == bindparam("product_id")),
        )
        .limit(1)
    ),
    "licenses": Query(
        select(orders.c.id)
        .where(
            orders.c.customer_id == bindparam("customer_id"),
            any_of(orders.c.status, "in_flight"),
            orders.c.kind == OrderKind.STORAGE_UPGRADE.value,
        )
        .limit(1)
    ),
}


async def _conflicting_order_in_flight(tx: Connection, customer_id: str, quote: Quote) -> bool:
    """Whether an unsettled order would race this one over the storage product.
    (Abandoned 3-D Secure orders are canceled by reconciliation.)"""
    if quote.kind is OrderKind.STORAGE_UPGRADE:
        storage = await storage_product_of(tx, customer_id)
        product_id = storage.id if storage is not None else ""
        query, params = _IN_FLIGHT_FOR_STORAGE["change"], {"product_id": product_id}
    else:
        storage = await storage_product_of(tx, customer_id)
        if storage is None or quote.product_id != storage.id:
            return False
        query, params = _IN_FLIGHT_FOR_STORAGE["licenses"], {}
    return bool(await tx.all(query, customer_id=customer_id, in_flight=_IN_FLIGHT_VALUES, **params))


_BY_IDEMPOTENCY_KEY = Query(
    select(*ORDER_COLUMNS).where(
        orders.c.customer_id == bindparam("customer_id"), orders.c.idempotency_key == bindparam("key")
    )
)
_INSERT_ORDER = Query(insert_into(orders))
_ORDER_FIELDS = tuple(column.name for column in ORDER_COLUMNS)


def _order_row(order: OrderView) -> dict[str, object]:
    """The order's columns, enums as their stored text."""
    values = {name: getattr(order, name) for name in _ORDER_FIELDS}
    values.update(kind=order.kind.value, status=order.status.value, billing_interval=order.billing_interval.value)
    return values


_INSERT_LINE = Query(insert_into(order_lines, skip=("id",)))


async def insert_order(
    tx: Connection,
    order: OrderView,
    lines: Sequence[QuoteLine],
    *,
    created_by_user_id: str | None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    renewal_attempt: int | None = None,
) -> None:
    """Store ``order`` and its lines (a RENEWAL order with the period it pays for)."""
    await tx.execute(
        _INSERT_ORDER,
        **_order_row(order),
        created_by_user_id=created_by_user_id,
        fulfilled_at=None,
        period_start=period_start,
        period_end=period_end,
        renewal_attempt=renewal_attempt,
    )
    for position, line in enumerate(lines):
        await tx.execute(
            _INSERT_LINE,
            order_id=order.id,
            position=position,
            description=line.description,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            amount_minor=line.amount_minor,
        )


async def _replay(tx: Connection, customer_id: str, request: Request) -> OrderView | None:
    """The order an idempotency key already made, if any; a different request
    under the same key is refused."""
    if request.idempotency_key is None:
        return None
    row = await tx.first(_BY_IDEMPOTENCY_KEY, customer_id=customer_id, key=request.idempotency_key)
    if row is None:
        return None
    existing = order_view(row)
    if existing.request_fingerprint != _fingerprint(request):
        raise UserErrors(
            UserError(
                "IDEMPOTENCY_KEY_REUSED",
                "This idempotency key was used for a different request.",
                ("input", "idempotencyKey"),
            )
        )
    return existing


async def record_order(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, request: Request
) -> OrderView | NewOrder:
    """Store a new PENDING order (step 1), or find the one this idempotency key made."""
    stamp = utcnow()
    async with conn.transaction() as tx:
        customer = await lock_acting_customer(tx, principal, customer_id)
        existing = await _replay(tx, customer.id, request)
        if existing is not None:
            return existing
        quote = await quote_for(services, tx, customer, request)
        method = await _payment_method(tx, customer.id, request.payment_method_id)
        if await _conflicting_order_in_flight(tx, customer.id, quote):
            raise UserErrors(
                UserError(
                    "ORDER_IN_PROGRESS",
                    "Another order changing this customer's storage plan is still being paid; "
                    "wait for it to finish (watch paymentConfirmation).",
                )
            )
        if quote.kind is OrderKind.LICENSE_PURCHASE and await renewal_in_flight(tx, quote.product_id or ""):
            raise UserErrors(
                UserError(
                    "ORDER_IN_PROGRESS",
                    "This product's renewal is being paid; buy licenses once it has settled "
                    "(watch orderStatusChanged).",
                )
            )
        order_id = new_id("ord")
        order = OrderView(
            id=order_id,
            customer_id=customer.id,
            partner_id=customer.partner_id,
            kind=quote.kind,
            status=OrderStatus.PENDING,
            billing_interval=quote.billing_interval,
            currency=quote.currency,
            subtotal_minor=quote.subtotal_minor,
            total_minor=quote.total_minor,
            product_id=quote.product_id,
            plan_id=quote.plan_id,
            quantity=quote.quantity,
            payment_method_id=method.id,
            idempotency_key=request.idempotency_key,
            request_fingerprint=_fingerprint(request),
            provider_idempotency_key=f"pbg-order-{order_id}",
            provider_payment_ref=None,
            client_secret=None,
            failure_reason=None,
            # When the record was made (the billing clock prices it, see quote_for).
            created_at=stamp,
            updated_at=stamp,
        )
        await insert_order(tx, order, quote.lines, created_by_user_id=principal.user_id)
        await audit.record(
            tx,
            partner_id=principal.partner_id,
            principal=principal,
            customer_id=customer.id,
            action=_audit_action(quote.kind),
            target_id=order_id,
            outcome="PLACED",
            detail={"total_minor": quote.total_minor, "quantity": quote.quantity, "plan": quote.plan_id},
        )
        event = await append_event(
            tx,
            order_id=order_id,
            customer_id=customer.id,
            partner_id=customer.partner_id,
            status=OrderStatus.PENDING,
        )
    await services.notifier.notify(event.seq)
    services.order_status_committed(quote.kind, OrderStatus.PENDING)
    return NewOrder(order, customer, method)


async def _place(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, request: Request
) -> OrderResult:
    action = _audit_action(request.kind)
    await audit.require_billing_role(services, conn, principal, customer_id=customer_id, action=action)
    _check_idempotency_key(request.idempotency_key)
    try:
        try:
            created = await record_order(services, conn, principal, customer_id, request)
        except UniqueViolation:
            # Two requests raced with one idempotency key; the other one won.
            created = await record_order(services, conn, principal, customer_id, request)
    except UserErrors as errors:
        raise await audit.record_refusal(
            conn, principal, customer_id=customer_id, action=action, errors=errors
        ) from None
    if isinstance(created, NewOrder):
        order = await charge_order(services, conn, created.order, customer=created.customer, method=created.method)
    else:
        order = created
        if order.status is OrderStatus.PENDING:
            order = await charge_order(services, conn, order)
    if order.status is OrderStatus.FAILED:
        return OrderResult(order, (UserError("CARD_DECLINED", order.failure_reason or "The payment failed."),))
    if order.status is OrderStatus.PENDING:
        unavailable = UserError(
            "PAYMENT_PROVIDER_UNAVAILABLE",
            "The payment provider did not answer. The order is kept and will be settled; "
            "repeat the request with the same idempotencyKey or watch paymentConfirmation.",
        )
        return OrderResult(order, (unavailable,))
    return OrderResult(order)


def charge_request(order: OrderView, *, provider_customer_ref: str, method: PaymentMethodView) -> ChargeRequest:
    """The provider charge for ``order``: its stored total and idempotency key."""
    return ChargeRequest(
        order_id=order.id,
        customer_id=order.customer_id,
        amount_minor=order.total_minor,
        currency=order.currency,
        provider_customer_ref=provider_customer_ref,
        payment_method_ref=method.provider_ref,
        idempotency_key=order.provider_idempotency_key,
    )


async def charge_order(
    services: BillingServices,
    conn: Connection,
    order: OrderView,
    *,
    customer: CustomerView | None = None,
    method: PaymentMethodView | None = None,
) -> OrderView:
    """Charge a PENDING order (again, safely) and apply the provider's answer.
    ``customer`` and ``method`` are read when the caller does not have them."""
    if customer is None:
        customer = (await customers_by_id(conn, [order.customer_id]))[order.customer_id]
    if method is None:
        assert order.payment_method_id is not None
        method = (await payment_methods_by_id(conn, [order.payment_method_id]))[order.payment_method_id]
    try:
        provider_customer = await ensure_provider_customer(services, conn, customer)
        outcome = await services.provider.charge(
            charge_request(order, provider_customer_ref=provider_customer, method=method)
        )
    except ProviderUnavailable:
        # The charge may or may not exist; reconciliation asks the provider later.
        log.warning("order %s: payment provider unavailable; left PENDING for reconciliation", order.id)
        return order
    except PaymentError as error:
        # The provider refused the charge outright (say, an amount it will not
        # take): the order fails and nothing else changes.
        log.warning("order %s: the provider refused the charge (%s)", order.id, type(error).__name__)
        outcome = PaymentOutcome(
            payment_ref="", order_id=order.id, status=PaymentStatus.FAILED, failure_reason=str(error), declined=True
        )
    settled = await apply_payment_outcome(services, conn, outcome)
    assert settled is not None
    if outcome.status is PaymentStatus.FAILED and settled.status is not OrderStatus.FAILED:
        log.info("order %s: decline arrived after %s", order.id, settled.status)
    return settled

"""The renewal pass: charge each due product for its next period, once.

A product is due when its ``next_renewal_at`` has come (its period's end, or
the next retry day while it is past due). For each due product, one write
transaction locks the customer and the product, checks again that it is due
and that no order touching it is unsettled, then either cancels it (it was set
to cancel, or its retries are used up) or stores a PENDING order of kind
RENEWAL for the period after the current one: the scheduled licenses (or the
current ones, never fewer than are assigned) at the plan's price for the
interval. The order is then charged off-session to the customer's primary
payment method outside any transaction, exactly like a purchase
(:func:`billing.purchases.charge_order`), and its outcome goes through
:func:`billing.settlement.apply_payment_outcome`, whose renewal hook
(:mod:`billing.product_renewal`) advances the period or counts the failure.

Each attempt at a period is charged at most once:

* instances running the pass at once serialise on the product's row (SQLite:
  the writer lock) and the second finds the first one's order in flight or
  the product no longer due; the unique index ``orders_renewal_attempt``
  (product, period, attempt) refuses a second order even so;
* a gateway killed after storing the order leaves it PENDING with its provider
  idempotency key, and :func:`billing.reconcile.reconcile_orders` charges it
  (or finds the charge) like any order; until then the pass leaves the
  product alone, since an order touching it is unsettled.

A pass takes each due product one period forward at most: a product several
periods behind catches up one period per pass.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import bindparam, exists, or_, select, update

from billing import audit
from billing.catalog import PRODUCT_WITH_PLAN, ProductView, product_of, product_view
from billing.customers import CustomerView
from billing.orders import OrderView, orders_by_id
from billing.payment_methods import PaymentMethodView, primary_payment_method
from billing.periods import period_after
from billing.product_renewal import apply_renewal_outcome, next_attempt_at
from billing.purchases import charge_order, insert_order
from billing.quotes import QuoteLine
from billing.services import BillingServices
from events.log import append_event
from models import OrderKind, OrderStatus, PlanKind, ProductStatus, new_id
from models.base import utcnow
from models.database import Connection, DatabaseUnavailable, Query, UniqueViolation, any_of
from models.orders import IN_FLIGHT
from models.tables import customers, orders, products

__all__ = ["NO_PAYMENT_METHOD", "RenewalReport", "count_settled", "renew_due_products"]

log = logging.getLogger(__name__)

NO_PAYMENT_METHOD = "The customer has no primary payment method."
_IN_FLIGHT_VALUES = [status.value for status in IN_FLIGHT]

# An unsettled order that touches the product: one of its own (a license
# purchase, an earlier renewal), or for a storage product a plan change.
_ORDER_IN_FLIGHT = exists().where(
    any_of(orders.c.status, "in_flight"),
    or_(
        orders.c.product_id == products.c.id,
        (products.c.plan_kind == PlanKind.CLOUD_STORAGE.value)
        & (orders.c.customer_id == products.c.customer_id)
        & (orders.c.kind == OrderKind.STORAGE_UPGRADE.value),
    ),
)
_DUE = products.c.next_renewal_at <= bindparam("now")
_DUE_PRODUCTS = Query(
    select(products.c.id, products.c.customer_id)
    .where(_DUE, ~_ORDER_IN_FLIGHT)
    .order_by(products.c.next_renewal_at, products.c.id)
    .limit(bindparam("limit"))
)
_LOCK_CUSTOMER = Query(
    select(customers.c.id, customers.c.partner_id, customers.c.name, customers.c.provider_customer_ref)
    .where(customers.c.id == bindparam("id"))
    .with_for_update()
)
_LOCK_DUE_PRODUCT = Query(
    PRODUCT_WITH_PLAN.where(products.c.id == bindparam("id"), _DUE, ~_ORDER_IN_FLIGHT).with_for_update(of=products)
)
_CANCEL = Query(
    update(products)
    .where(products.c.id == bindparam("id"))
    .values(status=ProductStatus.CANCELED.value, next_renewal_at=None, updated_at=bindparam("now"))
)


@dataclass
class RenewalReport:
    """What a pass did. ``failed`` counts attempts that failed (declined, no
    payment method); ``canceled`` counts products canceled, at a period end
    as asked or after the last retry; ``unsettled`` are renewal orders not
    settled when the pass ended (processing, or awaiting authentication)."""

    renewed: int = 0
    failed: int = 0
    canceled: int = 0
    unsettled: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {"renewed": self.renewed, "failed": self.failed, "canceled": self.canceled}


@dataclass(frozen=True)
class _Placed:
    order: OrderView
    customer: CustomerView
    method: PaymentMethodView | None


async def renew_due_products(
    services: BillingServices, *, now: datetime | None = None, limit: int = 500
) -> RenewalReport:
    """One renewal pass as of ``now`` (default: the billing clock)."""
    now = now or services.clock()
    report = RenewalReport()
    async with services.db.connection() as conn:
        due = await conn.all(_DUE_PRODUCTS, now=now, in_flight=_IN_FLIGHT_VALUES, limit=limit)
        for product_id, customer_id in due:
            await _renew(services, conn, product_id, customer_id, now=now, report=report)
    if report.renewed or report.failed or report.canceled or report.unsettled:
        log.info("renewal pass: %s", report)
    return report


async def count_settled(services: BillingServices, report: RenewalReport) -> RenewalReport:
    """Move the report's unsettled orders that have settled since into its counts."""
    async with services.db.connection() as conn:
        found = await orders_by_id(conn, report.unsettled)
        still: list[str] = []
        for order_id in report.unsettled:
            order = found[order_id]
            if order.status.is_terminal:
                await _count(conn, order, report)
            else:
                still.append(order_id)
    report.unsettled = still
    return report


async def _renew(
    services: BillingServices,
    conn: Connection,
    product_id: str,
    customer_id: str,
    *,
    now: datetime,
    report: RenewalReport,
) -> None:
    try:
        placed = await _place(services, conn, product_id, customer_id, now=now)
    except UniqueViolation:
        log.info("renewal of %s: another instance placed it first", product_id)
        return
    except DatabaseUnavailable:
        raise  # every other product would fail the same way: end the pass
    except Exception:
        # One product's trouble must not hold up the others' renewals; the
        # next pass tries it again.
        log.exception("renewal of %s failed", product_id)
        return
    if placed is None:
        return  # renewed, claimed or settled since the product was listed
    if placed == "canceled":
        report.canceled += 1
        return
    order = placed.order
    if order.status is OrderStatus.PENDING:
        order = await charge_order(services, conn, order, customer=placed.customer, method=placed.method)
    if order.status.is_terminal:
        await _count(conn, order, report)
    else:
        report.unsettled.append(order.id)


async def _count(conn: Connection, order: OrderView, report: RenewalReport) -> None:
    if order.status is OrderStatus.SUCCEEDED:
        report.renewed += 1
        return
    report.failed += 1
    assert order.product_id is not None
    product = await product_of(conn, order.customer_id, order.product_id)
    if product is not None and product.status is ProductStatus.CANCELED:
        report.canceled += 1


def _line(product: ProductView, licenses: int, start: datetime, end: datetime) -> QuoteLine:
    interval = product.billing_interval
    noun = "license" if licenses == 1 else "licenses"
    return QuoteLine(
        description=(
            f"{product.plan.name}: {licenses} {noun}, {interval.value.lower()}, "
            f"{start.date().isoformat()} to {end.date().isoformat()}"
        ),
        quantity=licenses,
        unit_price_minor=product.plan.price_minor(interval),
    )


async def _place(
    services: BillingServices, conn: Connection, product_id: str, customer_id: str, *, now: datetime
) -> _Placed | Literal["canceled"] | None:
    """In one transaction: cancel the product, or store its renewal order
    (already FAILED when there is no card to charge). None: not due any more."""
    events = []
    async with conn.transaction() as tx:
        customer_row = await tx.first(_LOCK_CUSTOMER, id=customer_id)
        row = await tx.first(_LOCK_DUE_PRODUCT, id=product_id, now=now, in_flight=_IN_FLIGHT_VALUES)
        if customer_row is None or row is None:
            return None
        customer, product = CustomerView(*customer_row), product_view(row)
        attempt = product.renewal_attempts
        if (
            product.cancel_at_period_end
            or next_attempt_at(product.current_period_end, attempt, services.renewal_retry_days) is None
        ):
            await _cancel(tx, customer, product, now=now)
            return "canceled"
        period = period_after(product.period_anchor, product.billing_interval, product.period)
        licenses = max(product.scheduled_licenses or product.total_licenses, product.assigned_licenses)
        line = _line(product, licenses, period.start, period.end)
        method = await primary_payment_method(tx, customer.id)
        order_id = new_id("ord")
        stamp = utcnow()
        key = f"renewal:{product.id}:{period.start.isoformat()}:{attempt}"
        order = OrderView(
            id=order_id,
            customer_id=customer.id,
            partner_id=customer.partner_id,
            kind=OrderKind.RENEWAL,
            status=OrderStatus.PENDING if method is not None else OrderStatus.FAILED,
            billing_interval=product.billing_interval,
            currency=product.plan.currency,
            subtotal_minor=line.amount_minor,
            total_minor=line.amount_minor,
            product_id=product.id,
            plan_id=product.plan.id,
            quantity=licenses,
            payment_method_id=method.id if method is not None else None,
            idempotency_key=None,
            request_fingerprint=hashlib.sha256(key.encode()).hexdigest(),
            provider_idempotency_key=f"pbg-order-{order_id}",
            provider_payment_ref=None,
            client_secret=None,
            failure_reason=None if method is not None else NO_PAYMENT_METHOD,
            created_at=stamp,
            updated_at=stamp,
        )
        await insert_order(
            tx,
            order,
            (line,),
            created_by_user_id=None,
            period_start=period.start,
            period_end=period.end,
            renewal_attempt=attempt,
        )
        await audit.record(
            tx,
            partner_id=customer.partner_id,
            customer_id=customer.id,
            action="order.renewal",
            target_id=order_id,
            outcome="PLACED",
            detail={"total_minor": order.total_minor, "quantity": licenses, "product": product.id, "attempt": attempt},
        )
        if method is None:
            # Nothing to charge: the attempt fails at once, in this transaction,
            # as a decline would (PENDING, then FAILED, for subscribers too).
            await apply_renewal_outcome(tx, order, OrderStatus.FAILED, now=now, retry_days=services.renewal_retry_days)
            await audit.record(
                tx,
                partner_id=customer.partner_id,
                customer_id=customer.id,
                action="order.status_changed",
                target_id=order_id,
                outcome=OrderStatus.FAILED.value,
                detail={"reason": "no payment method"},
            )
        # Stored last: the event log's order is its commit order.
        for status in [OrderStatus.PENDING] if method is not None else [OrderStatus.PENDING, OrderStatus.FAILED]:
            events.append(
                await append_event(
                    tx, order_id=order_id, customer_id=customer.id, partner_id=customer.partner_id, status=status
                )
            )
    for event in events:
        services.order_status_committed(OrderKind.RENEWAL, event.status)
        await services.notifier.notify(event.seq)
    return _Placed(order, customer, method)


async def _cancel(tx: Connection, customer: CustomerView, product: ProductView, *, now: datetime) -> None:
    await tx.execute(_CANCEL, id=product.id, now=now)
    reason = "cancel_at_period_end" if product.cancel_at_period_end else "retries exhausted"
    await audit.record(
        tx,
        partner_id=customer.partner_id,
        customer_id=customer.id,
        action="product.renewal",
        target_id=product.id,
        outcome=ProductStatus.CANCELED.value,
        detail={"reason": reason, "period_end": product.current_period_end.isoformat()},
    )

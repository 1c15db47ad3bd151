"""Apply a payment's outcome to its order: the one path for every provider
report (the charge call's answer, the sandbox's confirmation, a Stripe webhook,
reconciliation).

One guarded statement moves the order: ``UPDATE … WHERE status IN (the
statuses it may come from) RETURNING …``. Status therefore only moves forward,
and of two reports racing for the same order (the charge's answer and the
confirmation) the second sees the first's status: PostgreSQL re-checks the
condition after the first commits, SQLite's writer lock serialises them.
Fulfilment and the order event are written in the same transaction as the
move, so they happen exactly once. A RENEWAL order's moves go to
:func:`billing.product_renewal.apply_renewal_outcome` (the period advances,
or a failed attempt is counted) instead of fulfilment.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, func, select, update

from billing import audit
from billing.catalog import plans_by_id, storage_product_of
from billing.orders import ORDER_COLUMNS, OrderView, order_view, orders_by_id
from billing.periods import first_period
from billing.product_renewal import apply_renewal_outcome
from billing.services import BillingServices
from events.log import append_event
from models import OrderKind, OrderStatus, PlanKind, ProductStatus, new_id
from models.base import utcnow
from models.database import Connection, Query, any_of, insert_into
from models.orders import may_come_from
from models.tables import orders, products
from payments.provider import PaymentOutcome

__all__ = ["apply_payment_outcome"]

log = logging.getLogger(__name__)


def _move(by: str) -> Query:
    key = orders.c.id if by == "id" else orders.c.provider_payment_ref
    return Query(
        update(orders)
        .where(key == bindparam("key"), any_of(orders.c.status, "from_statuses"))
        .values(
            status=bindparam("status"),
            updated_at=bindparam("now"),
            provider_payment_ref=func.coalesce(bindparam("payment_ref"), orders.c.provider_payment_ref),
            client_secret=bindparam("client_secret"),
            failure_reason=bindparam("failure_reason"),
            fulfilled_at=bindparam("fulfilled_at"),
        )
        .returning(*ORDER_COLUMNS)
    )


_MOVE = {"id": _move("id"), "payment_ref": _move("payment_ref")}
_BY_PAYMENT_REF = Query(select(*ORDER_COLUMNS).where(orders.c.provider_payment_ref == bindparam("ref")))
_ADD_LICENSES = Query(
    update(products)
    .where(products.c.id == bindparam("id"))
    .values(total_licenses=products.c.total_licenses + bindparam("quantity"), updated_at=bindparam("now"))
    .returning(products.c.total_licenses)
)
_NEW_PRODUCT = Query(insert_into(products))
_CHANGE_PLAN = Query(
    update(products)
    .where(products.c.id == bindparam("id"))
    .values(
        plan_id=bindparam("plan_id"),
        billing_interval=bindparam("billing_interval"),
        total_licenses=bindparam("total_licenses"),
        # A new plan starts a new billing cycle, paid from now.
        period_anchor=bindparam("now"),
        current_period_start=bindparam("now"),
        current_period_end=bindparam("period_end"),
        status=ProductStatus.ACTIVE.value,
        cancel_at_period_end=False,
        scheduled_licenses=None,
        renewal_attempts=0,
        next_renewal_at=bindparam("period_end"),
        updated_at=bindparam("now"),
    )
)


async def apply_payment_outcome(
    services: BillingServices, conn: Connection, outcome: PaymentOutcome
) -> OrderView | None:
    """Move the order to the outcome's status if that is a step forward.

    Returns the order as it stands afterwards, or None for an unknown order.
    """
    new_status = OrderStatus(outcome.status.value)
    by, key = ("id", outcome.order_id) if outcome.order_id else ("payment_ref", outcome.payment_ref)
    if not key:
        return None
    now = services.clock()
    async with conn.transaction() as tx:
        moved = await tx.all(
            _MOVE[by],
            key=key,
            from_statuses=[status.value for status in may_come_from(new_status)],
            status=new_status.value,
            now=now,
            payment_ref=outcome.payment_ref or None,
            client_secret=outcome.client_secret if new_status is OrderStatus.REQUIRES_ACTION else None,
            failure_reason=outcome.failure_reason if new_status is OrderStatus.FAILED else None,
            fulfilled_at=now if new_status is OrderStatus.SUCCEEDED else None,
        )
        if not moved:
            # A repeated or late report (or an unknown order): nothing changes.
            current = await _current(tx, by, key)
            if current is None:
                log.warning("payment %s names no known order", outcome.payment_ref)
            elif current.status != new_status:
                log.info("order %s: ignoring %s after %s", current.id, new_status, current.status)
            return current
        order = order_view(moved[0])
        if order.kind is OrderKind.RENEWAL:
            await apply_renewal_outcome(tx, order, new_status, now=now, retry_days=services.renewal_retry_days)
        elif new_status is OrderStatus.SUCCEEDED:
            await _fulfil(tx, order, now=now)
        await audit.record(
            tx,
            partner_id=order.partner_id,
            customer_id=order.customer_id,
            action="order.status_changed",
            target_id=order.id,
            outcome=new_status.value,
            detail={"payment": outcome.payment_ref},
        )
        event = await append_event(
            tx,
            order_id=order.id,
            customer_id=order.customer_id,
            partner_id=order.partner_id,
            status=new_status,
        )
    await services.notifier.notify(event.seq)
    services.order_status_committed(order.kind, new_status)
    return order


async def _current(conn: Connection, by: str, key: str) -> OrderView | None:
    if by == "id":
        return (await orders_by_id(conn, [key])).get(key)
    row = await conn.first(_BY_PAYMENT_REF, ref=key)
    return order_view(row) if row else None


async def _fulfil(tx: Connection, order: OrderView, *, now: datetime) -> None:
    if order.kind is OrderKind.LICENSE_PURCHASE:
        # Atomic increment: concurrent purchases of one product never lose an update.
        if not await tx.all(_ADD_LICENSES, id=order.product_id, quantity=order.quantity, now=now):
            raise RuntimeError(f"order {order.id}: product {order.product_id} is gone")
        return
    assert order.plan_id is not None
    plan = (await plans_by_id(tx, [order.plan_id]))[order.plan_id]
    assert plan.kind is PlanKind.CLOUD_STORAGE
    # Apply to whatever storage product the customer holds now: the one quoted,
    # or one another order created meanwhile.
    current = await storage_product_of(tx, order.customer_id)
    period = first_period(now, order.billing_interval)
    if current is None:
        await tx.execute(
            _NEW_PRODUCT,
            id=new_id("prd"),
            customer_id=order.customer_id,
            plan_id=plan.id,
            plan_kind=PlanKind.CLOUD_STORAGE.value,
            billing_interval=order.billing_interval.value,
            total_licenses=order.quantity,
            assigned_licenses=0,
            period_anchor=now,
            current_period_start=period.start,
            current_period_end=period.end,
            status=ProductStatus.ACTIVE.value,
            cancel_at_period_end=False,
            scheduled_licenses=None,
            renewal_attempts=0,
            next_renewal_at=period.end,
            created_at=utcnow(),
            updated_at=now,
        )
        return
    await tx.execute(
        _CHANGE_PLAN,
        id=current.id,
        plan_id=plan.id,
        billing_interval=order.billing_interval.value,
        total_licenses=order.quantity,
        now=now,
        period_end=period.end,
    )

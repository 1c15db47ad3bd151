"""Settle orders the gateway left unfinished (it died between charge and
fulfilment, a confirmation was lost, the provider was unreachable)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from billing.orders import ORDER_COLUMNS, OrderView, order_view
from billing.purchases import charge_order
from billing.services import BillingServices
from billing.settlement import apply_payment_outcome
from models import OrderStatus
from models.database import Connection, Query, any_of
from models.orders import IN_FLIGHT
from models.tables import orders
from payments.provider import PaymentStatus, ProviderUnavailable

__all__ = ["ReconcileReport", "reconcile_orders"]

log = logging.getLogger(__name__)

REQUIRES_ACTION_TTL = timedelta(hours=24)


_UNSETTLED = Query(
    select(*ORDER_COLUMNS)
    .where(any_of(orders.c.status, "in_flight"), orders.c.updated_at < bindparam("cutoff"))
    .order_by(orders.c.updated_at)
    .limit(bindparam("limit"))
)


@dataclass
class ReconcileReport:
    examined: int = 0
    changed: int = 0
    unreachable: int = 0


async def reconcile_orders(
    services: BillingServices,
    *,
    older_than: timedelta = timedelta(seconds=30),
    requires_action_ttl: timedelta = REQUIRES_ACTION_TTL,
    limit: int = 500,
) -> ReconcileReport:
    """Ask the provider about every unsettled order not touched for ``older_than``.

    An order still awaiting 3-D Secure after ``requires_action_ttl`` is
    canceled: while it is open, the customer's storage plan cannot change.
    """
    now = services.clock()
    report = ReconcileReport()
    async with services.db.connection() as conn:
        unsettled = [
            order_view(row)
            for row in await conn.all(
                _UNSETTLED, in_flight=[status.value for status in IN_FLIGHT], cutoff=now - older_than, limit=limit
            )
        ]
        for order in unsettled:
            await _reconcile_one(services, conn, order, now=now, requires_action_ttl=requires_action_ttl, report=report)
    if report.changed or report.unreachable:
        log.info("reconcile: %s", report)
    return report


async def _reconcile_one(
    services: BillingServices,
    conn: Connection,
    order: OrderView,
    *,
    now: datetime,
    requires_action_ttl: timedelta,
    report: ReconcileReport,
) -> None:
    report.examined += 1
    try:
        outcome = await services.provider.retrieve(payment_ref=order.provider_payment_ref, order_id=order.id)
    except ProviderUnavailable:
        report.unreachable += 1
        return
    if outcome is None:
        if order.status is OrderStatus.PENDING:
            # Never reached the provider: resume the charge under the same key.
            settled = await charge_order(services, conn, order)
            report.changed += settled.status != order.status
        return
    abandoned = order.status is OrderStatus.REQUIRES_ACTION and order.updated_at < now - requires_action_ttl
    if abandoned and outcome.status is PaymentStatus.REQUIRES_ACTION:
        try:
            outcome = await services.provider.cancel(payment_ref=outcome.payment_ref)
        except ProviderUnavailable:
            report.unreachable += 1
            return
    settled_order = await apply_payment_outcome(services, conn, outcome)
    if settled_order is not None and settled_order.status != order.status:
        report.changed += 1

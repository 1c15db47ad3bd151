"""Settle orders the gateway left unfinished (it died between charge and
fulfilment, a confirmation was lost, the provider was unreachable)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select

from billing.orders import charge_order
from billing.services import BillingServices
from billing.settlement import apply_payment_outcome
from models import Order, OrderStatus
from payments.provider import PaymentStatus, ProviderUnavailable

__all__ = ["ReconcileReport", "reconcile_orders"]

log = logging.getLogger(__name__)

_UNSETTLED = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.REQUIRES_ACTION)


REQUIRES_ACTION_TTL = timedelta(hours=24)


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
    cutoff = now - older_than
    async with services.db.read() as session:
        rows = await session.exec(
            select(Order)
            .where(col(Order.status).in_(_UNSETTLED), col(Order.updated_at) < cutoff)
            .order_by(col(Order.updated_at))
            .limit(limit)
        )
        orders = list(rows.all())
    report = ReconcileReport()
    for order in orders:
        report.examined += 1
        try:
            outcome = await services.provider.retrieve(payment_ref=order.provider_payment_ref, order_id=order.id)
        except ProviderUnavailable:
            report.unreachable += 1
            continue
        if outcome is None:
            if order.status == OrderStatus.PENDING:
                # Never reached the provider: resume the charge under the same key.
                settled = await charge_order(services, order)
                report.changed += settled.status != order.status
            continue
        abandoned = order.status == OrderStatus.REQUIRES_ACTION and order.updated_at < now - requires_action_ttl
        if abandoned and outcome.status is PaymentStatus.REQUIRES_ACTION:
            try:
                outcome = await services.provider.cancel(payment_ref=outcome.payment_ref)
            except ProviderUnavailable:
                report.unreachable += 1
                continue
        settled_order = await apply_payment_outcome(services, outcome)
        if settled_order is not None and settled_order.status != order.status:
            report.changed += 1
    if report.changed or report.unreachable:
        log.info("reconcile: %s", report)
    return report

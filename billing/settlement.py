"""Apply a payment's outcome to its order: the one path for every provider
report (the charge call's answer, the sandbox's confirmation, a Stripe webhook,
reconciliation). Status moves forward only; fulfilment and the order event are
written in the same transaction as the status change, so they happen once."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from billing import audit
from billing.events import append_event
from billing.quotes import storage_product
from billing.services import BillingServices
from models import Order, OrderKind, OrderStatus, Plan, PlanKind, Product
from payments.provider import PaymentOutcome

__all__ = ["apply_payment_outcome"]

log = logging.getLogger(__name__)


async def _find_order(session: AsyncSession, outcome: PaymentOutcome) -> Order | None:
    """The order, locked (on PostgreSQL) until the transaction ends: two outcomes
    of one payment racing (the charge's answer and the confirmation) then apply
    one after the other, the second seeing the first's status, instead of both
    reading PENDING and the guarded UPDATE dropping the later, legitimate step.
    SQLite's write lock already serialises them."""
    if outcome.order_id:
        order = await session.get(Order, outcome.order_id, with_for_update=True)
        if order is not None:
            return order
    if not outcome.payment_ref:
        return None
    rows = await session.exec(select(Order).where(Order.provider_payment_ref == outcome.payment_ref).with_for_update())
    return rows.first()


async def apply_payment_outcome(services: BillingServices, outcome: PaymentOutcome) -> Order | None:
    """Move the order to the outcome's status if that is a step forward.

    Returns the order as it stands afterwards, or None for an unknown order.
    """
    new_status = OrderStatus(outcome.status.value)
    async with services.db.write() as session:
        order = await _find_order(session, outcome)
        if order is None:
            log.warning("payment %s names no known order", outcome.payment_ref)
            return None
        old_status = OrderStatus(order.status)
        if not old_status.may_become(new_status):
            if old_status != new_status:
                log.info("order %s: ignoring %s after %s", order.id, new_status, old_status)
            return order
        now = services.clock()
        moved = await session.exec(
            update(Order)
            .where(col(Order.id) == order.id, col(Order.status) == old_status)
            .values(
                status=new_status,
                updated_at=now,
                provider_payment_ref=outcome.payment_ref or order.provider_payment_ref,
                client_secret=outcome.client_secret if new_status is OrderStatus.REQUIRES_ACTION else None,
                failure_reason=outcome.failure_reason if new_status is OrderStatus.FAILED else None,
                fulfilled_at=now if new_status is OrderStatus.SUCCEEDED else None,
            )
            .returning(col(Order.id))
        )
        if moved.first() is None:
            return order  # another writer moved it first (PostgreSQL); theirs stands
        if new_status is OrderStatus.SUCCEEDED:
            await _fulfil(session, order, now=now)
        await audit.record(
            session,
            partner_id=order.partner_id,
            customer_id=order.customer_id,
            action="order.status_changed",
            target_id=order.id,
            outcome=new_status.value,
            detail={"from": old_status.value, "payment": outcome.payment_ref},
        )
        event = await append_event(session, order, new_status)
        await session.refresh(order)
    assert event.seq is not None
    await services.notifier.notify(event.seq)
    return order


async def _fulfil(session: AsyncSession, order: Order, *, now: datetime) -> None:
    if order.kind == OrderKind.LICENSE_PURCHASE:
        # Atomic increment: concurrent purchases of one product never lose an update.
        result = await session.exec(
            update(Product)
            .where(col(Product.id) == order.product_id)
            .values(total_licenses=col(Product.total_licenses) + order.quantity, updated_at=now)
            .returning(col(Product.total_licenses))
        )
        if result.first() is None:
            raise RuntimeError(f"order {order.id}: product {order.product_id} is gone")
        return
    plan = await session.get(Plan, order.plan_id)
    assert plan is not None and plan.kind == PlanKind.CLOUD_STORAGE
    # Apply to whatever storage product the customer holds now: the one quoted,
    # or one another order created meanwhile.
    current = await storage_product(session, order.customer_id)
    if current is None:
        session.add(
            Product(
                customer_id=order.customer_id,
                plan_id=plan.id,
                plan_kind=PlanKind.CLOUD_STORAGE,
                billing_interval=order.billing_interval,
                total_licenses=order.quantity,
                period_anchor=now,
                updated_at=now,
            )
        )
        return
    await session.exec(
        update(Product)
        .where(col(Product.id) == current.id)
        .values(
            plan_id=plan.id,
            billing_interval=order.billing_interval,
            total_licenses=order.quantity,
            period_anchor=now,
            updated_at=now,
        )
    )

"""A product's renewal: what a RENEWAL order's outcome does to it, when it
is next attempted, and whether one is being paid.

:func:`apply_renewal_outcome` is called by :func:`billing.settlement.apply_payment_outcome` inside the
transaction that moves the order, so the product changes exactly once per
order status, whoever reports it (the charge's answer, a confirmation, a
webhook, reconciliation):

* SUCCEEDED: the paid period becomes the current one, a scheduled license
  change takes effect, the product is ACTIVE.
* REQUIRES_ACTION: the period is over and unpaid until someone authenticates:
  PAST_DUE.
* FAILED or CANCELED: one more failed attempt; PAST_DUE until the next retry
  day of ``RENEWAL_RETRY_DAYS``, CANCELED after the last one.

Every update is guarded by the period and attempt the order was made for, so
an order about a period the product has left behind changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from billing import audit
from billing.orders import OrderView
from models import OrderKind, OrderStatus, ProductStatus
from models.database import Connection, Query, any_of
from models.orders import IN_FLIGHT
from models.tables import orders, products

__all__ = ["apply_renewal_outcome", "next_attempt_at", "renewal_in_flight"]

log = logging.getLogger(__name__)

_NOT_CANCELED = products.c.status != ProductStatus.CANCELED.value
_AT_PERIOD = (products.c.id == bindparam("product_id")) & (products.c.current_period_end == bindparam("period_start"))

_IN_FLIGHT = Query(
    select(orders.c.id)
    .where(
        orders.c.product_id == bindparam("product_id"),
        orders.c.kind == OrderKind.RENEWAL.value,
        any_of(orders.c.status, "in_flight"),
    )
    .limit(1)
)
_RENEWAL_OF = Query(
    select(orders.c.period_start, orders.c.period_end, orders.c.renewal_attempt).where(orders.c.id == bindparam("id"))
)
_RENEWED = Query(
    update(products)
    .where(_AT_PERIOD, _NOT_CANCELED)
    .values(
        current_period_start=bindparam("period_start"),
        current_period_end=bindparam("period_end"),
        total_licenses=bindparam("licenses"),
        scheduled_licenses=None,
        status=ProductStatus.ACTIVE.value,
        renewal_attempts=0,
        next_renewal_at=bindparam("period_end"),
        updated_at=bindparam("now"),
    )
    .returning(products.c.id)
)
_AWAITING_AUTHENTICATION = Query(
    update(products)
    .where(_AT_PERIOD, _NOT_CANCELED)
    .values(status=ProductStatus.PAST_DUE.value, updated_at=bindparam("now"))
    .returning(products.c.id)
)
_ATTEMPT_FAILED = Query(
    update(products)
    .where(_AT_PERIOD, _NOT_CANCELED, products.c.renewal_attempts == bindparam("attempt"))
    .values(
        renewal_attempts=products.c.renewal_attempts + 1,
        status=bindparam("status"),
        next_renewal_at=bindparam("next_at"),
        updated_at=bindparam("now"),
    )
    .returning(products.c.id)
)


def next_attempt_at(period_end: datetime, failed_attempts: int, retry_days: Sequence[int]) -> datetime | None:
    """When to charge the period after ``period_end`` once ``failed_attempts``
    attempts failed: at the end, then each retry day after it; None when the
    retries are used up."""
    if failed_attempts == 0:
        return period_end
    if failed_attempts > len(retry_days):
        return None
    return period_end + timedelta(days=retry_days[failed_attempts - 1])


async def renewal_in_flight(conn: Connection, product_id: str) -> bool:
    """Whether a renewal of the product is placed but not settled (its
    licenses must not change under it)."""
    return bool(await conn.all(_IN_FLIGHT, product_id=product_id, in_flight=[s.value for s in IN_FLIGHT]))


async def apply_renewal_outcome(
    tx: Connection, order: OrderView, status: OrderStatus, *, now: datetime, retry_days: Sequence[int]
) -> None:
    """Inside the transaction that moved ``order`` (a RENEWAL) to ``status``."""
    if status in (OrderStatus.PENDING, OrderStatus.PROCESSING):
        return
    row = await tx.first(_RENEWAL_OF, id=order.id)
    assert row is not None and order.product_id is not None
    period_start, period_end, attempt = row
    where = {"product_id": order.product_id, "period_start": period_start, "now": now}
    if status is OrderStatus.SUCCEEDED:
        changed = await tx.all(_RENEWED, **where, period_end=period_end, licenses=order.quantity)
        outcome = ProductStatus.ACTIVE
    elif status is OrderStatus.REQUIRES_ACTION:
        changed = await tx.all(_AWAITING_AUTHENTICATION, **where)
        outcome = ProductStatus.PAST_DUE
    else:
        next_at = next_attempt_at(period_start, attempt + 1, retry_days)
        outcome = ProductStatus.PAST_DUE if next_at is not None else ProductStatus.CANCELED
        changed = await tx.all(_ATTEMPT_FAILED, **where, attempt=attempt, status=outcome.value, next_at=next_at)
    if not changed:
        # Already past this period or attempt (or canceled meanwhile): nothing to do.
        log.info("renewal %s: product %s has moved on; %s changes nothing", order.id, order.product_id, status)
        return
    await audit.record(
        tx,
        partner_id=order.partner_id,
        customer_id=order.customer_id,
        action="product.renewal",
        target_id=order.product_id,
        outcome=outcome.value,
        detail={"order": order.id, "period_start": period_start.isoformat(), "attempt": attempt},
    )

"""Orders as the API shows them, and the reads that find them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_, select

from models import BillingInterval, OrderKind, OrderStatus
from models.database import Connection, Query, Row, any_of
from models.tables import order_lines, orders

__all__ = [
    "ORDER_COLUMNS",
    "OrderLineView",
    "OrderView",
    "lines_by_order_id",
    "order_of",
    "order_view",
    "orders_by_id",
    "orders_page",
]


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    customer_id: str
    partner_id: str
    kind: OrderKind
    status: OrderStatus
    billing_interval: BillingInterval
    currency: str
    subtotal_minor: int
    total_minor: int
    # What fulfilment does once paid: add `quantity` licenses to `product_id`,
    # move the customer to `plan_id` with `quantity` licenses, or (RENEWAL)
    # pay `product_id`'s next period for `quantity` licenses.
    product_id: str | None
    plan_id: str | None
    quantity: int
    payment_method_id: str | None
    idempotency_key: str | None
    request_fingerprint: str
    # Sent with the charge; derived from the order id and stored before the
    # provider is called, so a retry finds the first charge.
    provider_idempotency_key: str
    provider_payment_ref: str | None
    client_secret: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLineView:
    description: str
    quantity: int
    unit_price_minor: int
    amount_minor: int


ORDER_COLUMNS = (
    orders.c.id,
    orders.c.customer_id,
    orders.c.partner_id,
    orders.c.kind,
    orders.c.status,
    orders.c.billing_interval,
    orders.c.currency,
    orders.c.subtotal_minor,
    orders.c.total_minor,
    orders.c.product_id,
    orders.c.plan_id,
    orders.c.quantity,
    orders.c.payment_method_id,
    orders.c.idempotency_key,
    orders.c.request_fingerprint,
    orders.c.provider_idempotency_key,
    orders.c.provider_payment_ref,
    orders.c.client_secret,
    orders.c.failure_reason,
    orders.c.created_at,
    orders.c.updated_at,
)


def order_view(row: Row) -> OrderView:
    """An order from a row of :data:`ORDER_COLUMNS`."""
    id_, customer_id, partner_id, kind, status, interval, *rest = row
    return OrderView(
        id_, customer_id, partner_id, OrderKind(kind), OrderStatus(status), BillingInterval(interval), *rest
    )


_NEWEST_FIRST = (orders.c.created_at.desc(), orders.c.id.desc())
_OF_CUSTOMER = orders.c.customer_id == bindparam("customer_id")
_WITH_STATUS = orders.c.status == bindparam("status")
_AFTER_KEY = or_(
    orders.c.created_at < bindparam("created_at"),
    (orders.c.created_at == bindparam("created_at")) & (orders.c.id < bindparam("id")),
)


def _page(*conditions: object) -> Query:
    return Query(
        select(*ORDER_COLUMNS)
        .where(_OF_CUSTOMER, *conditions)  # type: ignore[arg-type]
        .order_by(*_NEWEST_FIRST)
        .limit(bindparam("limit"))
    )


_PAGES = {
    (False, False): _page(),
    (True, False): _page(_WITH_STATUS),
    (False, True): _page(_AFTER_KEY),
    (True, True): _page(_WITH_STATUS, _AFTER_KEY),
}
_ORDER_OF = Query(select(*ORDER_COLUMNS).where(_OF_CUSTOMER, orders.c.id == bindparam("id")))
_BY_IDS = Query(select(*ORDER_COLUMNS).where(any_of(orders.c.id, "ids")))
_LINES = Query(
    select(
        order_lines.c.order_id,
        order_lines.c.description,
        order_lines.c.quantity,
        order_lines.c.unit_price_minor,
        order_lines.c.amount_minor,
    )
    .where(any_of(order_lines.c.order_id, "ids"))
    .order_by(order_lines.c.order_id, order_lines.c.position)
)


async def order_of(conn: Connection, customer_id: str, order_id: str) -> OrderView | None:
    row = await conn.first(_ORDER_OF, customer_id=customer_id, id=order_id)
    return order_view(row) if row else None


async def orders_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, OrderView]:
    return {row[0]: order_view(row) for row in await conn.all(_BY_IDS, ids=list(ids))}


async def orders_page(
    conn: Connection,
    customer_id: str,
    *,
    status: OrderStatus | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[OrderView]:
    """Up to ``limit`` of the customer's orders, newest first, after the
    (created_at, id) key given."""
    params: dict[str, object] = {"customer_id": customer_id, "limit": limit}
    if status is not None:
        params["status"] = status.value
    if after is not None:
        params["created_at"], params["id"] = after
    rows = await conn.all(_PAGES[(status is not None, after is not None)], **params)
    return [order_view(row) for row in rows]


async def lines_by_order_id(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[OrderLineView]]:
    grouped: dict[str, list[OrderLineView]] = defaultdict(list)
    for order_id, *line in await conn.all(_LINES, ids=list(order_ids)):
        grouped[order_id].append(OrderLineView(*line))
    return grouped

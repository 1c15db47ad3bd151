"""The stored order-event log: what subscribers read and resume from.

Each status an order takes is appended with a ``seq`` that orders all events.
Subscribers resume from "every event with a larger seq", which is only safe if
events become visible in ``seq`` order: SQLite's single writer gives that; on
PostgreSQL a transaction-scoped advisory lock taken just before the insert
makes seq allocation and commit happen in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func, select, text

from models import OrderStatus
from models.base import utcnow
from models.database import Connection, Query, Row, insert_into
from models.tables import order_events

__all__ = [
    "EventFilter",
    "EventNotifier",
    "NullNotifier",
    "OrderEventRecord",
    "append_event",
    "events_after",
    "latest_event",
    "latest_seq",
]

# Any constant will do; it names the one lock that orders event commits.
_EVENT_STREAM_LOCK = 0x0B111
_BATCH = 500


@dataclass(frozen=True, slots=True)
class OrderEventRecord:
    seq: int
    order_id: str
    customer_id: str
    partner_id: str
    status: OrderStatus
    occurred_at: datetime


class EventNotifier(Protocol):
    async def notify(self, seq: int) -> None:
        """Tell listeners (on every instance) that event ``seq`` is committed."""


class NullNotifier:
    async def notify(self, seq: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Whose events: a partner's, one customer's, or one order's."""

    partner_id: str
    customer_id: str | None = None
    order_id: str | None = None

    def matches(self, event: OrderEventRecord) -> bool:
        return (
            event.partner_id == self.partner_id
            and (self.customer_id is None or event.customer_id == self.customer_id)
            and (self.order_id is None or event.order_id == self.order_id)
        )


_COLUMNS = (
    order_events.c.seq,
    order_events.c.order_id,
    order_events.c.customer_id,
    order_events.c.partner_id,
    order_events.c.status,
    order_events.c.occurred_at,
)
_LOCK = Query(text(f"SELECT pg_advisory_xact_lock({_EVENT_STREAM_LOCK})"))
_INSERT = Query(insert_into(order_events, skip=("seq",)).returning(order_events.c.seq))
_MAX_SEQ = Query(select(func.coalesce(func.max(order_events.c.seq), 0)))


def _after(*conditions: object) -> Query:
    return Query(
        select(*_COLUMNS)
        .where(order_events.c.seq > bindparam("after"), *conditions)  # type: ignore[arg-type]
        .order_by(order_events.c.seq)
        .limit(_BATCH)
    )


def _latest(*conditions: object) -> Query:
    return Query(select(*_COLUMNS).where(*conditions).order_by(order_events.c.seq.desc()).limit(1))  # type: ignore[arg-type]


_PARTNER = order_events.c.partner_id == bindparam("partner_id")
_CUSTOMER = order_events.c.customer_id == bindparam("customer_id")
_ORDER = order_events.c.order_id == bindparam("order_id")
_AFTER_ALL = _after()
_AFTER = {
    (False, False): _after(_PARTNER),
    (True, False): _after(_PARTNER, _CUSTOMER),
    (False, True): _after(_PARTNER, _ORDER),
    (True, True): _after(_PARTNER, _CUSTOMER, _ORDER),
}
_LATEST_OF_ORDER = _latest(_PARTNER, _CUSTOMER, _ORDER)


def _record(row: Row) -> OrderEventRecord:
    seq, order_id, customer_id, partner_id, status, occurred_at = row
    return OrderEventRecord(seq, order_id, customer_id, partner_id, OrderStatus(status), occurred_at)


async def append_event(
    tx: Connection, *, order_id: str, customer_id: str, partner_id: str, status: OrderStatus
) -> OrderEventRecord:
    """Store that an order took ``status``. Call it last in its transaction."""
    if tx.dialect == "postgresql":
        await tx.execute(_LOCK)
    now = utcnow()
    seq = await tx.scalar(
        _INSERT, order_id=order_id, customer_id=customer_id, partner_id=partner_id, status=status.value, occurred_at=now
    )
    return OrderEventRecord(seq, order_id, customer_id, partner_id, status, now)


async def events_after(conn: Connection, after: int, event_filter: EventFilter | None = None) -> list[OrderEventRecord]:
    """Up to a batch of events with ``seq > after``, in order (all of them, or a filter's)."""
    if event_filter is None:
        rows = await conn.all(_AFTER_ALL, after=after)
    else:
        query = _AFTER[(event_filter.customer_id is not None, event_filter.order_id is not None)]
        params: dict[str, object] = {"after": after, "partner_id": event_filter.partner_id}
        if event_filter.customer_id is not None:
            params["customer_id"] = event_filter.customer_id
        if event_filter.order_id is not None:
            params["order_id"] = event_filter.order_id
        rows = await conn.all(query, **params)
    return [_record(row) for row in rows]


async def latest_event(
    conn: Connection, *, partner_id: str, customer_id: str, order_id: str
) -> OrderEventRecord | None:
    """The order's newest event (its current status), if the order is the customer's."""
    row = await conn.first(_LATEST_OF_ORDER, partner_id=partner_id, customer_id=customer_id, order_id=order_id)
    return _record(row) if row else None


async def latest_seq(conn: Connection) -> int:
    return int(await conn.scalar(_MAX_SEQ))


BATCH_SIZE = _BATCH

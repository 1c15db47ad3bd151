"""Stored order events and the notifier that rings when one is committed."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Order, OrderEvent, OrderStatus

__all__ = ["EventNotifier", "NullNotifier", "append_event"]

# Any constant will do; it names the one lock that orders event commits.
_EVENT_STREAM_LOCK = 0x0B111


class EventNotifier(Protocol):
    async def notify(self, seq: int) -> None:
        """Tell listeners (on every instance) that event ``seq`` is committed."""


class NullNotifier:
    async def notify(self, seq: int) -> None:
        return None


async def append_event(session: AsyncSession, order: Order, status: OrderStatus) -> OrderEvent:
    """Store that ``order`` took ``status``. Call it last in its transaction.

    Subscribers resume from "every event with a larger seq", which is only safe
    if events become visible in seq order. SQLite's single writer gives that;
    on PostgreSQL a transaction-scoped advisory lock taken just before the
    insert makes seq allocation and commit happen in the same order.
    """
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()  # sqlmodel deprecates session.execute()
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_STREAM_LOCK})
    event = OrderEvent(order_id=order.id, customer_id=order.customer_id, partner_id=order.partner_id, status=status)
    session.add(event)
    await session.flush()
    return event

"""Fan stored order events out to this process's subscribers.

The database is the truth; the broadcast is only a doorbell. Each gateway
process runs one hub. When any instance commits an event it rings the doorbell;
every hub then reads the new events once (``seq > last seen``) and hands each
to its local subscribers whose filter matches. A periodic poll covers rings
lost while the broadcast was down.

A subscriber never misses or repeats an event: it registers first, then reads
what it needs from the database, then takes events from its queue, skipping
any it already has (events are committed in ``seq`` order, see
``billing.events.append_event``). Its queue is bounded; a subscriber too slow
to keep up is switched back to reading from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from broadcaster import Broadcast
from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from models import Order, OrderEvent
from models.database import Database

__all__ = ["CHANNEL", "EventFilter", "EventHub", "OrderUpdate", "Subscriber"]

log = logging.getLogger(__name__)

CHANNEL = "pbg.order-events"
_FETCH_BATCH = 500


@dataclass(frozen=True)
class OrderUpdate:
    """A stored event with its order as read alongside it, so fanning an
    event out to many subscribers reads the order once, not once each."""

    event: OrderEvent
    order: Order

    @property
    def seq(self) -> int:
        return self.event.seq or 0


@dataclass(frozen=True)
class EventFilter:
    partner_id: str
    customer_id: str | None = None
    order_id: str | None = None

    def matches(self, event: OrderEvent) -> bool:
        return (
            event.partner_id == self.partner_id
            and (self.customer_id is None or event.customer_id == self.customer_id)
            and (self.order_id is None or event.order_id == self.order_id)
        )


@dataclass(eq=False)
class Subscriber:
    filter: EventFilter
    queue: asyncio.Queue[OrderUpdate]
    # Set when the queue overflowed: the subscriber re-reads from the database.
    behind: bool = False
    last_seq: int = 0
    _hub: EventHub | None = field(default=None, repr=False)

    async def updates(self, *, after: int) -> AsyncIterator[OrderUpdate]:
        """Every matching event with ``seq > after``, stored ones first, then live."""
        assert self._hub is not None
        self.last_seq, self.behind = after, True
        while True:
            if self.behind:
                self.behind = False
                while not self.queue.empty():
                    self.queue.get_nowait()
                async for update in self._hub.stored_updates(self.filter, after=self.last_seq):
                    self.last_seq = update.seq
                    yield update
                continue
            update = await self.queue.get()
            if self.behind or update.seq <= self.last_seq:
                continue
            self.last_seq = update.seq
            yield update


class EventHub:
    def __init__(
        self,
        db: Database,
        broadcast: Broadcast,
        *,
        poll_interval_s: float = 2.0,
        queue_size: int = 1000,
    ) -> None:
        self._db = db
        self._broadcast = broadcast
        self._poll_interval = poll_interval_s
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._last_seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._last_publish_warning = 0.0

    async def start(self) -> None:
        self._last_seq = await self.latest_seq()
        await self._broadcast.connect()
        self._tasks = [
            asyncio.create_task(self._listen(), name="event-hub-listen"),
            asyncio.create_task(self._dispatch_loop(), name="event-hub-dispatch"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._broadcast.disconnect()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def notify(self, seq: int) -> None:
        """Event ``seq`` is committed: wake this hub and ring the other instances."""
        self._wake.set()
        try:
            await self._broadcast.publish(CHANNEL, str(seq))
        except Exception as exc:
            now = time.monotonic()
            if now - self._last_publish_warning > 10:
                self._last_publish_warning = now
                log.warning("broadcast publish failed (%s); other instances will catch up by polling", exc)

    @contextlib.asynccontextmanager
    async def subscribe(self, event_filter: EventFilter) -> AsyncIterator[Subscriber]:
        subscriber = Subscriber(event_filter, asyncio.Queue(self._queue_size), _hub=self)
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    async def latest_seq(self, event_filter: EventFilter | None = None) -> int:
        query = select(func.max(OrderEvent.seq))
        if event_filter is not None:
            query = query.where(*_conditions(event_filter))
        async with self._db.read() as session:
            return (await session.exec(query)).one() or 0

    async def latest_update(self, event_filter: EventFilter) -> OrderUpdate | None:
        query = _with_orders().where(*_conditions(event_filter)).order_by(col(OrderEvent.seq).desc()).limit(1)
        async with self._db.read() as session:
            row = (await session.exec(query)).first()
        return OrderUpdate(*row) if row else None

    async def stored_updates(self, event_filter: EventFilter | None, *, after: int) -> AsyncIterator[OrderUpdate]:
        while True:
            query = _with_orders().where(col(OrderEvent.seq) > after)
            if event_filter is not None:
                query = query.where(*_conditions(event_filter))
            async with self._db.read() as session:
                rows = (await session.exec(query.order_by(col(OrderEvent.seq)).limit(_FETCH_BATCH))).all()
            batch = [OrderUpdate(event, order) for event, order in rows]
            for update in batch:
                yield update
            if len(batch) < _FETCH_BATCH:
                return
            after = batch[-1].seq

    async def _listen(self) -> None:
        """Turn every ring (from any instance) into a wake-up."""
        while True:
            try:
                async with self._broadcast.subscribe(CHANNEL) as rings:
                    async for _ring in rings:  # type: ignore[union-attr]
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast subscription failed; retrying")
                await asyncio.sleep(1)

    async def _dispatch_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            try:
                await self._dispatch_new_events()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading new order events failed; will retry")
                await asyncio.sleep(self._poll_interval)

    async def _dispatch_new_events(self) -> None:
        async for update in self.stored_updates(None, after=self._last_seq):
            self._last_seq = update.seq
            for subscriber in list(self._subscribers):
                if subscriber.behind or not subscriber.filter.matches(update.event):
                    continue
                try:
                    subscriber.queue.put_nowait(update)
                except asyncio.QueueFull:
                    subscriber.behind = True


def _with_orders() -> SelectOfScalar[tuple[OrderEvent, Order]]:
    return select(OrderEvent, Order).join(Order, col(Order.id) == col(OrderEvent.order_id))  # type: ignore[return-value]


def _conditions(event_filter: EventFilter) -> list[ColumnElement[bool]]:
    conditions = [col(OrderEvent.partner_id) == event_filter.partner_id]
    if event_filter.customer_id is not None:
        conditions.append(col(OrderEvent.customer_id) == event_filter.customer_id)
    if event_filter.order_id is not None:
        conditions.append(col(OrderEvent.order_id) == event_filter.order_id)
    return conditions

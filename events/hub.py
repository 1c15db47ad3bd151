"""Hand stored order events to this process's subscribers.

The database is the truth; the broadcast is only a doorbell. Each gateway
process runs one hub. When any instance commits an event it rings the doorbell
with the event's ``seq``; every hub then reads the new events once (``seq >
last read``) and hands each, as one shared :class:`Delivery`, to its local
subscribers whose filter matches, so work done for an event (reading its
order, resolving a subscription document) is done once for all of them. A
periodic poll covers rings lost while the broadcast was down.

With no subscriber the hub reads nothing: a ring only moves its position
forward (every event up to a rung ``seq`` is committed, since events commit in
``seq`` order), and a subscriber that arrives later reads what it needs itself.

A subscriber never misses or repeats an event: it registers first, then reads
what it needs from the database, then takes deliveries from its queue,
skipping any it already has. Its queue is bounded; a subscriber too slow to
keep up is switched back to reading from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from broadcaster import Broadcast

from events.log import BATCH_SIZE, EventFilter, OrderEventRecord, events_after, latest_seq
from models.database import Database

__all__ = ["CHANNEL", "Delivery", "EventHub", "Subscriber"]

log = logging.getLogger(__name__)

CHANNEL = "pbg.order-events"


@dataclass(eq=False, slots=True)
class Delivery:
    """One event as handed to subscribers; ``shared`` holds what the layers
    above compute for it once (per live event, it is the same object for every
    subscriber of this process)."""

    event: OrderEventRecord
    shared: dict[Any, Any] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        return self.event.seq


class Subscriber:
    """One subscription's place in the hub: a bounded line of deliveries."""

    __slots__ = ("_hub", "_loop", "_pending", "_waiter", "behind", "filter", "last_seq", "limit")

    def __init__(self, event_filter: EventFilter, hub: EventHub, limit: int) -> None:
        self.filter = event_filter
        self.limit = limit
        # Set when the line overflowed: the subscriber re-reads from the database.
        self.behind = False
        self.last_seq = 0
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        # Made on the first delivery and dropped once drained: an idle
        # subscriber (nearly all of them, nearly always) keeps no deque (~700 B).
        self._pending: deque[Delivery] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, delivery: Delivery) -> None:
        """Hand over a live delivery (from the hub's dispatch, never blocking)."""
        if self.behind:
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        if len(pending) >= self.limit:
            self.behind = True
            self._pending = None
        else:
            pending.append(delivery)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next(self) -> Delivery | None:
        """The next live delivery; None when the subscriber fell behind."""
        while not self._pending and not self.behind:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.behind or self._pending is None:
            return None
        delivery = self._pending.popleft()
        if not self._pending:
            self._pending = None
        return delivery

    async def deliveries(self, *, after: int) -> AsyncIterator[Delivery]:
        """Every matching event with ``seq > after``, stored ones first, then live."""
        self.last_seq, self.behind = after, True
        while True:
            if self.behind:
                self.behind = False
                self._pending = None
                async for delivery in self._hub.stored(self.filter, after=self.last_seq):
                    self.last_seq = delivery.seq
                    yield delivery
                continue
            live = await self._next()
            if live is None or live.seq <= self.last_seq:
                continue
            self.last_seq = live.seq
            yield live


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
        # By partner: an event is only ever offered to its own partner's subscribers.
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._wake = asyncio.Event()
        self._last_seq = 0
        self._rung_seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._last_publish_warning = 0.0
        # Called once per live event before it is offered to its subscribers
        # (the GraphQL layer reads the event's order there, once for all).
        self.prepare: Callable[[Delivery], Awaitable[None]] | None = None

    async def start(self) -> None:
        async with self._db.connection() as conn:
            self._last_seq = await latest_seq(conn)
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
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    async def notify(self, seq: int) -> None:
        """Event ``seq`` is committed: wake this hub and ring the other instances."""
        self._ring(seq)
        try:
            await self._broadcast.publish(CHANNEL, str(seq))
        except Exception as exc:
            now = time.monotonic()
            if now - self._last_publish_warning > 10:
                self._last_publish_warning = now
                log.warning("broadcast publish failed (%s); other instances will catch up by polling", exc)

    @contextlib.asynccontextmanager
    async def subscribe(self, event_filter: EventFilter) -> AsyncIterator[Subscriber]:
        subscriber = self.add(event_filter)
        try:
            yield subscriber
        finally:
            self.remove(subscriber)

    def add(self, event_filter: EventFilter) -> Subscriber:
        """A new subscriber, offered every live event from now on; pair it with
        :meth:`remove` (or use :meth:`subscribe`, which does)."""
        subscriber = Subscriber(event_filter, self, self._queue_size)
        self._subscribers.setdefault(event_filter.partner_id, set()).add(subscriber)
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        partner_id = subscriber.filter.partner_id
        partner = self._subscribers.get(partner_id)
        if partner is not None:
            partner.discard(subscriber)
            if not partner:
                del self._subscribers[partner_id]

    async def latest_seq(self) -> int:
        async with self._db.connection() as conn:
            return await latest_seq(conn)

    async def stored(self, event_filter: EventFilter | None, *, after: int) -> AsyncIterator[Delivery]:
        """Stored events after ``after``, in order, read a batch at a time."""
        while True:
            async with self._db.connection() as conn:
                batch = await events_after(conn, after, event_filter)
            for event in batch:
                yield Delivery(event)
            if len(batch) < BATCH_SIZE:
                return
            after = batch[-1].seq

    def _ring(self, seq: int | None) -> None:
        if seq is not None and seq > self._rung_seq:
            self._rung_seq = seq
        self._wake.set()

    async def _listen(self) -> None:
        """Turn every ring (from any instance) into a wake-up."""
        while True:
            try:
                async with self._broadcast.subscribe(CHANNEL) as rings:
                    async for ring in rings:  # type: ignore[union-attr]
                        message = getattr(ring, "message", "")
                        self._ring(int(message) if isinstance(message, str) and message.isdigit() else None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast subscription failed; retrying")
                await asyncio.sleep(1)

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # A timer rather than asyncio.wait_for, which makes a task per
            # wait: this loop wakes for every event.
            poll = loop.call_later(self._poll_interval, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                poll.cancel()
            self._wake.clear()
            try:
                await self._dispatch_new_events()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading new order events failed; will retry")
                await asyncio.sleep(self._poll_interval)

    async def _dispatch_new_events(self) -> None:
        if not self._subscribers:
            # Nobody to tell: only move forward to what is known committed.
            self._last_seq = max(self._last_seq, self._rung_seq)
            return
        async for delivery in self.stored(None, after=self._last_seq):
            self._last_seq = delivery.seq
            subscribers = [
                subscriber
                for subscriber in self._subscribers.get(delivery.event.partner_id, ())
                if subscriber.filter.matches(delivery.event)
            ]
            if not subscribers:
                continue
            if self.prepare is not None:
                try:
                    await self.prepare(delivery)
                except Exception:
                    # Each subscriber then builds what it needs itself.
                    log.exception("preparing event %s for its subscribers failed", delivery.seq)
            for subscriber in subscribers:
                subscriber.offer(delivery)

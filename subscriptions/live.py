"""Live order events sent to each subscriber as one shared, encoded payload.

A subscription run the usual way keeps, per subscriber, a chain of async
generators (the stream below, graphql-core's mapping, Strawberry's result
stream and its operation loop) that every event passes through, and encodes
the result once per subscriber. For ``orderStatusChanged`` a transport can
instead take the :class:`LiveStream` the resolver returns and call
:func:`deliver`: the subscriber then waits on the hub directly, and each
event's ``next`` payload is executed and encoded once per distinct
subscription (:mod:`subscriptions.multiplex`'s key) and shared by all of
them; what is left per subscriber is one wake-up, one string concatenation
and one WebSocket frame.

Iterated as an async iterable, a :class:`LiveStream` is the ordinary stream,
so any other transport (and graphql-core's own ``subscribe``) runs it as
before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from graphql import ExecutionResult, GraphQLError

from events.hub import Delivery, EventHub
from events.log import EventFilter
from schema.errors import classify_errors, log_unexpected
from subscriptions.multiplex import MultiplexingExecutor

__all__ = ["LiveStream", "deliver", "distinct_live_subscriptions", "next_payload", "shared_executor"]

# A value of Delivery.shared: (this marker, the subscription's result key).
_PAYLOAD = "encoded-next-payload"

T = TypeVar("T")


class LiveStream(Generic[T]):
    """The live part of ``orderStatusChanged``: events of ``event_filter``
    with a seq above ``start`` (None: above the newest one stored when the
    stream starts)."""

    __slots__ = ("event_filter", "hub", "start", "to_graphql")

    def __init__(
        self,
        hub: EventHub,
        event_filter: EventFilter,
        start: int | None,
        to_graphql: Callable[[Delivery], Awaitable[T]],
    ) -> None:
        self.hub = hub
        self.event_filter = event_filter
        self.start = start
        # The stream's own item for graphql-core (the event as the API shows it).
        self.to_graphql = to_graphql

    async def start_seq(self) -> int:
        """Where the stream starts; ask it once subscribed to the hub, so
        nothing committed in between is lost (the hub's contract)."""
        return self.start if self.start is not None else await self.hub.latest_seq()

    async def __aiter__(self) -> AsyncIterator[T]:
        async with self.hub.subscribe(self.event_filter) as subscriber:
            async for delivery in subscriber.deliveries(after=await self.start_seq()):
                yield await self.to_graphql(delivery)


def shared_executor(stream: LiveStream[Any], executor: MultiplexingExecutor) -> MultiplexingExecutor:
    """The executor :func:`deliver` should use for ``stream``: the one of the
    first live subscriber with the same key (or ``executor``). An executor
    holds the operation's execution plans (about 4 KB), and each event's
    result is the same for every subscriber of a key anyway
    (:mod:`subscriptions.multiplex`). Pass what it returns to :func:`deliver`
    at once, which gives it back when it ends."""
    return _EXECUTORS.adopt(stream.hub, executor)


async def deliver(
    stream: LiveStream[Any],
    executor: MultiplexingExecutor,
    send_payload: Callable[[str], Awaitable[None]],
    encode: Callable[[object], str],
) -> None:
    """Send each of ``stream``'s events until cancelled: ``send_payload`` gets
    the event's ``next`` payload (``{"data": …}``, with ``errors`` if any), as
    JSON text ``encode`` made, shared with every subscriber of the same key."""
    key = (_PAYLOAD, executor.result_key)
    # The hub's subscriber is added and removed by hand, not with
    # ``hub.subscribe``: one async generator less held per subscriber.
    subscriber = stream.hub.add(stream.event_filter)
    try:
        async for delivery in subscriber.deliveries(after=await stream.start_seq()):
            text: str | None = delivery.shared.get(key)
            if text is None:
                event = await stream.to_graphql(delivery)
                result = executor.build_per_event_executor(event).execute_operation(False)
                if not isinstance(result, ExecutionResult):
                    result = await result
                # Two subscribers may both get here for one event while its
                # result is computed; each encodes it, the result is shared.
                text = delivery.shared[key] = encode(next_payload(result))
            await send_payload(text)
    finally:
        stream.hub.remove(subscriber)
        _EXECUTORS.give_back(stream.hub, executor)


class _SharedExecutors:
    """Per hub and subscription key: the executor and how many use it."""

    def __init__(self) -> None:
        self._live: dict[Hashable, list[Any]] = {}

    def adopt(self, hub: EventHub, executor: MultiplexingExecutor) -> MultiplexingExecutor:
        entry = self._live.setdefault((id(hub), executor.result_key), [executor, 0])
        entry[1] += 1
        shared: MultiplexingExecutor = entry[0]
        return shared

    @property
    def count(self) -> int:
        return len(self._live)

    def give_back(self, hub: EventHub, executor: MultiplexingExecutor) -> None:
        key = (id(hub), executor.result_key)
        entry = self._live[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self._live[key]


_EXECUTORS = _SharedExecutors()


def distinct_live_subscriptions() -> int:
    """How many distinct subscriptions (shared executors) are live in this process."""
    return _EXECUTORS.count


def next_payload(result: ExecutionResult) -> dict[str, object]:
    """A ``next`` message's payload as Strawberry's transport builds it, the
    errors coded (and logged once when unexpected) as every result's are."""
    payload: dict[str, object] = {"data": result.data}
    if result.errors:
        errors: list[GraphQLError] = list(result.errors)
        log_unexpected(errors, None)
        payload["errors"] = [error.formatted for error in classify_errors(errors)]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload

"""Broadcast backends that survive their server going away.

The doorbell design
-------------------
Stored order events are the truth. When an instance commits one it publishes a
short message (the event's ``seq``) on one channel; every instance's single
listener treats any message as "re-read new events from the database". The
broadcast therefore only has to be a *doorbell*:

* a lost ring merely delays delivery until the next periodic poll, so
  ``publish`` may fail, and it must fail fast (``BroadcastUnavailable``)
  rather than stall the request that committed the event;
* pending rings are interchangeable, so each channel keeps at most one pending
  ring (see ``_PendingRings``) and memory stays bounded however fast rings
  arrive and however slowly they are consumed;
* the listener must never die: ``next_published`` never raises because the
  server went away. A supervisor task reconnects with capped exponential
  backoff, re-subscribes, and then emits ``Event(channel, RECONNECTED)`` on
  every subscribed channel, because rings may have been missed meanwhile and
  the listener should catch up from the database now, not at the next poll.

broadcaster 0.3.1's own backends meet none of this with redis-py 8 (its
``redis://`` backend hangs, queues are unbounded, and ``Broadcast._listener``
dies silently on the first backend error), hence these replacements, passed
as ``Broadcast(backend=make_broadcast_backend(url))``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from broadcaster import BroadcastBackend, Event
from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from events.memory import InProcessBackend

__all__ = [
    "RECONNECTED",
    "BackendTimings",
    "BroadcastUnavailable",
    "ResilientPostgresBackend",
    "ResilientRedisBackend",
    "backend_healthy",
    "make_broadcast_backend",
]

log = logging.getLogger(__name__)

# Message of the synthetic event emitted on each channel after a (re)connect.
RECONNECTED = "reconnected"

# What a vanished or frozen server looks like from each client library.
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
_PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
# ... and what a connection the server dropped while it sat idle looks like.
_PG_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    ConnectionError,
)
_PG_MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: the longest LISTEN channel name


class BroadcastUnavailable(ConnectionError):
    """The broadcast server cannot take a ring now; polling will deliver the event."""


@dataclass(frozen=True)
class BackendTimings:
    """Every wait in the backends is bounded by one of these (seconds)."""

    connect_timeout: float = 1.0  # one connection attempt, handshake included
    io_timeout: float = 1.0  # one command and its reply (publish, ping, subscribe)
    liveness_interval: float = 1.0  # the listener pings this often; 2x silence = dead
    backoff_initial: float = 0.1  # first pause between reconnection attempts ...
    backoff_max: float = 2.0  # ... doubling up to this

    @property
    def command_deadline(self) -> float:
        """A command may need a fresh connection first."""
        return self.connect_timeout + self.io_timeout


class _PendingRings:
    """The bounded inbox between a backend's listener and ``next_published``.

    Coalescing, not a FIFO: at most one pending event per channel, the newest.
    A ring only says "re-read the database", and one read answers any number
    of rings, so older pending rings carry no information; keeping the newest
    keeps the highest ``seq``. Memory is bounded by the number of channels and
    a flood can never push out the ring that matters (the latest). A pending
    RECONNECTED is not overwritten: it is the stronger "you may have missed
    rings" signal. Past ``max_channels`` the oldest channel's ring is dropped
    (only reachable with more subscribed channels than that).
    """

    def __init__(self, max_channels: int) -> None:
        if max_channels < 1:
            raise ValueError("max_pending must be at least 1")
        self._max_channels = max_channels
        self._pending: dict[str, Event] = {}  # insertion order = arrival order
        self._not_empty = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, event: Event) -> None:
        current = self._pending.get(event.channel)
        if current is not None and current.message == RECONNECTED:
            return
        if current is None and len(self._pending) >= self._max_channels:
            del self._pending[next(iter(self._pending))]
        self._pending[event.channel] = event
        self._not_empty.set()

    def discard(self, channel: str) -> None:
        self._pending.pop(channel, None)

    async def get(self) -> Event:
        while not self._pending:
            self._not_empty.clear()
            await self._not_empty.wait()
        return self._pending.pop(next(iter(self._pending)))


class _ResilientBackend(BroadcastBackend):
    """Shared machinery: channel set, pending rings, reconnecting supervisor."""

    def __init__(self, url: str, *, max_pending: int = 1000, timings: BackendTimings | None = None) -> None:
        # BroadcastBackend.__init__ only raises NotImplementedError: not called.
        self._url = url
        self._timings = timings or BackendTimings()
        self._channels: set[str] = set()
        self._rings = _PendingRings(max_pending)
        self._live = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._backoff = self._timings.backoff_initial
        self._down_since: float | None = None

    # -- the BroadcastBackend interface -------------------------------------

    async def connect(self) -> None:
        """Start listening; waits briefly for the server but never fails.

        An unreachable server at startup is not fatal: the gateway still runs
        (``ping`` reports it, polling delivers events) and the supervisor keeps
        retrying in the background.
        """
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise(), name=f"{type(self).__name__}-supervisor")
        try:
            await asyncio.wait_for(self._live.wait(), self._timings.command_deadline)
        except TimeoutError:
            log.warning("broadcast %s unreachable; retrying in the background", self.safe_url)

    async def disconnect(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._live.clear()
        await self._close_publisher()

    async def subscribe(self, channel: str) -> None:
        """Never raises: a channel that cannot be subscribed now is on reconnect."""
        self._channels.add(channel)
        await self._subscribe_live(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._rings.discard(channel)
        await self._unsubscribe_live(channel)

    async def next_published(self) -> Event:
        """The next ring; never raises, however often the server goes away."""
        return await self._rings.get()

    # -- public extras --------------------------------------------------------

    @property
    def is_listening(self) -> bool:
        """True while the listener connection is up and subscribed."""
        return self._live.is_set()

    @property
    def pending_rings(self) -> int:
        """Rings received but not yet taken by ``next_published`` (bounded)."""
        return len(self._rings)

    @property
    def safe_url(self) -> str:
        """The URL without its password, fit for logs and error messages."""
        return _redact(self._url)

    async def ping(self) -> bool:
        """Does the server answer within the I/O budget? Never raises."""
        raise NotImplementedError

    # -- for subclasses ------------------------------------------------------

    async def _session(self) -> None:
        """Connect, subscribe ``self._channels``, call ``_went_live``, then
        listen until the connection is found dead (by raising)."""
        raise NotImplementedError

    async def _subscribe_live(self, channel: str) -> None:
        raise NotImplementedError

    async def _unsubscribe_live(self, channel: str) -> None:
        raise NotImplementedError

    async def _close_publisher(self) -> None:
        raise NotImplementedError

    def _deliver(self, channel: str, message: str) -> None:
        if channel in self._channels:  # rings racing an unsubscribe are dropped
            self._rings.put(Event(channel, message))

    def _went_live(self, channels: set[str]) -> None:
        """The session is subscribed to ``channels``: announce the gap."""
        loop_time = asyncio.get_running_loop().time()
        if self._down_since is not None:
            log.info("broadcast %s back after %.1fs", self.safe_url, loop_time - self._down_since)
        self._down_since = None
        self._backoff = self._timings.backoff_initial
        self._live.set()
        for channel in channels:
            self._deliver(channel, RECONNECTED)

    # -- internals -------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                await self._session()
            except Exception as exc:  # any failure of a session means: reconnect
                self._note_failure(exc)
            self._live.clear()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self._timings.backoff_max)

    def _note_failure(self, exc: Exception) -> None:
        # Warn once per outage, not at every attempt of a long one.
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            log.warning("broadcast %s lost: %r; reconnecting", self.safe_url, exc)
        else:
            log.debug("broadcast %s still down: %r", self.safe_url, exc)


class ResilientRedisBackend(_ResilientBackend):
    """Redis pub/sub (``redis://``, ``rediss://``) on ``redis.asyncio``.

    Two clients: the listener's never retries (redis-py would otherwise
    reconnect and re-subscribe behind our back, and the RECONNECTED
    announcement would be skipped); the publisher's does not retry either,
    so a dead server fails ``publish`` within ``BackendTimings.command_deadline``.
    The connection pool already replaces connections a restart left stale.
    """

    def __init__(self, url: str, *, max_pending: int = 1000, timings: BackendTimings | None = None) -> None:
        super().__init__(url, max_pending=max_pending, timings=timings)
        self._publisher = self._client()
        self._listener = self._client()
        self._pubsub: PubSub | None = None
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._restart_requested = False

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self._url,
            socket_connect_timeout=self._timings.connect_timeout,
            socket_timeout=self._timings.io_timeout,
            retry=Retry(NoBackoff(), 0),
        )

    async def publish(self, channel: str, message: Any) -> None:
        try:
            async with asyncio.timeout(self._timings.command_deadline):
                await self._publisher.publish(channel, _text(message))
        except _REDIS_ERRORS as exc:
            raise BroadcastUnavailable(f"cannot publish to {self.safe_url}: {exc!r}") from exc

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._timings.command_deadline):
                return bool(await self._publisher.ping())
        except _REDIS_ERRORS:
            return False

    async def disconnect(self) -> None:
        await super().disconnect()
        await self._listener.aclose()

    async def _close_publisher(self) -> None:
        await self._publisher.aclose()

    # -- the listener session ----------------------------------------------

    async def _session(self) -> None:
        pubsub = self._listener.pubsub()
        self._restart_requested = False
        try:
            async with asyncio.timeout(self._timings.command_deadline):
                await pubsub.connect()  # type: ignore[no-untyped-call]
                self._pubsub = pubsub  # from now on subscribe() talks to it directly
                channels = set(self._channels)
                if channels:
                    await pubsub.subscribe(*channels)
                    await self._read_until_confirmed(pubsub, channels)
            self._went_live(channels)
            await self._read_until_dead(pubsub)
        finally:
            self._pubsub = None
            self._fail_confirmations()
            with contextlib.suppress(*_REDIS_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_until_confirmed(self, pubsub: PubSub, channels: set[str]) -> None:
        # RECONNECTED must not be announced before Redis confirms the
        # subscription, or a ring published in between would be missed.
        waiting = set(channels)
        while waiting:
            message = await pubsub.get_message(timeout=self._timings.io_timeout)
            if message is not None:
                self._handle(message)
                if message["type"] == "subscribe":
                    waiting.discard(_text(message["channel"]))

    async def _read_until_dead(self, pubsub: PubSub) -> None:
        """Read messages, PINGing every interval: a frozen server answers nothing, and 2 intervals
        of silence end the session (a killed server already fails the read)."""
        interval = self._timings.liveness_interval
        loop = asyncio.get_running_loop()
        last_heard = last_ping = loop.time()
        while not self._restart_requested:
            now = loop.time()
            if now - last_heard > 2 * interval:
                raise TimeoutError(f"no reply from Redis for {now - last_heard:.1f}s")
            if now - last_ping >= interval:
                await pubsub.ping()
                last_ping = now
            message = await pubsub.get_message(timeout=interval / 4)
            if message is not None:
                last_heard = loop.time()
                self._handle(message)
        raise ConnectionError("restart requested after an unconfirmed subscribe")

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            self._deliver(_text(message["channel"]), _text(message["data"]))
        elif kind == "subscribe":
            waiter = self._confirmations.pop(_text(message["channel"]), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _fail_confirmations(self) -> None:
        for waiter in self._confirmations.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("listener connection closed"))
        self._confirmations.clear()

    # -- subscriptions while live ----------------------------------------------

    async def _subscribe_live(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # the next session subscribes it and announces RECONNECTED
        waiter = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = waiter
        try:
            # Returning only once Redis confirms lets a caller subscribe, read
            # the database, and then rely on rings without a gap.
            async with asyncio.timeout(self._timings.io_timeout):
                await pubsub.subscribe(channel)
                await waiter
        except _REDIS_ERRORS as exc:
            # Unsure whether Redis has it: start a fresh session, which
            # subscribes every channel and announces RECONNECTED on each.
            if self._pubsub is pubsub:
                log.warning("subscribe to %r not confirmed (%r); reconnecting", channel, exc)
                self._restart_requested = True
        finally:
            self._confirmations.pop(channel, None)

    async def _unsubscribe_live(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is not None:
            # Best effort: stray rings for an unknown channel are dropped anyway.
            with contextlib.suppress(*_REDIS_ERRORS):
                async with asyncio.timeout(self._timings.io_timeout):
                    await pubsub.unsubscribe(channel)


class ResilientPostgresBackend(_ResilientBackend):
    """PostgreSQL LISTEN/NOTIFY (``postgres://``, ``postgresql://``) on asyncpg.

    One connection LISTENs (watched by a termination callback and a periodic
    ``SELECT 1``); another, opened on demand, sends ``pg_notify``. asyncpg
    allows one operation at a time per connection, hence a lock for each.
    """

    def __init__(self, url: str, *, max_pending: int = 1000, timings: BackendTimings | None = None) -> None:
        super().__init__(url, max_pending=max_pending, timings=timings)
        self._listener: Any = None  # asyncpg.Connection while a session is up
        self._listening: set[str] = set()
        self._listener_lock = asyncio.Lock()
        self._publisher: Any = None  # asyncpg.Connection, opened on demand
        self._publisher_lock = asyncio.Lock()

    async def publish(self, channel: str, message: Any) -> None:
        _check_pg_channel(channel)
        try:
            await self._on_publisher("SELECT pg_notify($1, $2)", channel, _text(message))
        except _PG_ERRORS as exc:
            raise BroadcastUnavailable(f"cannot notify via {self.safe_url}: {exc!r}") from exc

    async def ping(self) -> bool:
        try:
            await self._on_publisher("SELECT 1")
        except _PG_ERRORS:
            return False
        return True

    async def _on_publisher(self, query: str, *args: str) -> None:
        # Bound the wait for the lock too: callers queued behind a stalled
        # publish then fail on time instead of one after another.
        async with asyncio.timeout(self._timings.command_deadline):
            await self._publisher_lock.acquire()
        try:
            await self._execute_on_publisher(query, *args)
        finally:
            self._publisher_lock.release()

    async def _execute_on_publisher(self, query: str, *args: str) -> None:
        reused = self._publisher is not None and not self._publisher.is_closed()
        if not reused:
            self._publisher = await self._connect()
        try:
            await self._publisher.execute(query, *args, timeout=self._timings.io_timeout)
        except _PG_LOST:
            await self._close_publisher()
            if not reused:
                raise
            # The server dropped the idle connection (restart, terminated
            # backend): one retry on a fresh connection before giving up.
            self._publisher = await self._connect()
            await self._publisher.execute(query, *args, timeout=self._timings.io_timeout)
        except _PG_ERRORS:
            await self._close_publisher()
            raise

    async def _close_publisher(self) -> None:
        conn, self._publisher = self._publisher, None
        await _close_pg(conn, self._timings.io_timeout)

    async def _connect(self) -> Any:
        return await asyncpg.connect(self._url, timeout=self._timings.connect_timeout)

    # -- the listener session ----------------------------------------------

    async def _session(self) -> None:
        lost = asyncio.Event()
        conn = await self._connect()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            async with self._listener_lock:
                self._listener, self._listening = conn, set()
                channels = set(self._channels)
                for channel in channels:
                    await self._listen(conn, channel)
            self._went_live(channels)
            await self._watch(conn, lost)
        finally:
            self._listener, self._listening = None, set()
            await _close_pg(conn, self._timings.io_timeout)

    async def _listen(self, conn: Any, channel: str) -> None:
        # LISTEN is in effect once add_listener returns, so RECONNECTED can
        # be announced right after without a window for missed rings.
        async with asyncio.timeout(self._timings.io_timeout):
            await conn.add_listener(channel, self._on_notification)
        self._listening.add(channel)

    def _on_notification(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self._deliver(channel, payload)

    async def _watch(self, conn: Any, lost: asyncio.Event) -> None:
        """Never returns: raises once the connection is closed or stops answering."""
        interval = self._timings.liveness_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), interval)
            if lost.is_set():
                raise ConnectionError("LISTEN connection closed")
            async with self._listener_lock:
                await conn.fetchval("SELECT 1", timeout=self._timings.io_timeout)

    # -- subscriptions while live ----------------------------------------------

    async def subscribe(self, channel: str) -> None:
        _check_pg_channel(channel)
        await super().subscribe(channel)

    async def _subscribe_live(self, channel: str) -> None:
        async with self._listener_lock:
            conn = self._listener
            if conn is None or channel in self._listening:
                return  # the next session listens and announces RECONNECTED
            try:
                await self._listen(conn, channel)
            except _PG_ERRORS as exc:
                # Unsure whether LISTEN took effect: drop the connection; the
                # next session listens on every channel and announces it.
                log.warning("LISTEN %r failed (%r); reconnecting", channel, exc)
                conn.terminate()

    async def _unsubscribe_live(self, channel: str) -> None:
        async with self._listener_lock:
            conn = self._listener
            if conn is None or channel not in self._listening:
                return
            self._listening.discard(channel)
            with contextlib.suppress(*_PG_ERRORS):
                async with asyncio.timeout(self._timings.io_timeout):
                    await conn.remove_listener(channel, self._on_notification)


def make_broadcast_backend(url: str) -> BroadcastBackend:
    """The backend for ``BROADCAST_URL``; raises ValueError for unknown schemes."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return InProcessBackend(url)
    if scheme in ("redis", "rediss"):
        return ResilientRedisBackend(url)
    if scheme in ("postgres", "postgresql"):
        return ResilientPostgresBackend(url)
    raise ValueError(
        f"unsupported BROADCAST_URL scheme {scheme or '(none)'!r}: "
        "expected memory://, redis://, rediss://, postgres:// or postgresql://"
    )


async def backend_healthy(backend: BroadcastBackend) -> bool:
    """For readiness: can ``backend`` carry rings between instances right now?

    The in-process memory backend always can; ours must be listening (so
    this instance hears rings) and answer ``ping`` (so it can ring others);
    any other backend cannot be checked and reports unhealthy.
    """
    if isinstance(backend, InProcessBackend):
        return True
    if isinstance(backend, _ResilientBackend):
        return backend.is_listening and await backend.ping()
    return False


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _check_pg_channel(channel: str) -> None:
    # LISTEN silently truncates longer names while pg_notify rejects them:
    # such a channel would never ring, so refuse it up front.
    if not channel or len(channel.encode()) > _PG_MAX_IDENTIFIER:
        raise ValueError(f"PostgreSQL channel names need 1 to {_PG_MAX_IDENTIFIER} bytes, got {channel!r}")


async def _close_pg(conn: Any, grace: float) -> None:
    """Close politely if the server answers within ``grace``, else just drop the socket."""
    if conn is None or conn.is_closed():
        return
    try:
        await conn.close(timeout=grace)
    except _PG_ERRORS:
        conn.terminate()

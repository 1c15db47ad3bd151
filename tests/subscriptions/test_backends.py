"""The broadcast doorbell backends against real Redis and PostgreSQL servers.

Shared servers: ``TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) and
``TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test).
Restart tests start their own redis-server on a free port and never touch the
shared one. A missing server skips its tests, except with ``CI=true``, where
it fails them. Every wait is bounded, so a broken backend fails, never hangs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import asyncpg
import pytest
from broadcaster import Broadcast, BroadcastBackend, Event
from redis import asyncio as aioredis

from events.backends import (
    RECONNECTED,
    BackendTimings,
    BroadcastUnavailable,
    ResilientPostgresBackend,
    ResilientRedisBackend,
    _PendingRings,
    backend_healthy,
    make_broadcast_backend,
)
from events.memory import InProcessBackend
from tests.support.services import require_redis, unavailable

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WAIT = 5.0  # the longest any single step of these tests may take
FAST = 1.0  # "fails quickly": a refused connection, not a timeout
POLL = 0.01  # interval for polling state that has no event to wait on


# -- availability of the servers --------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=2)
        await conn.close()

    # In a thread of its own, so its event loop cannot disturb pytest-asyncio's.
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, probe()).result(timeout=WAIT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {exc!r}")
    return POSTGRES_URL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of this test's own, to kill, freeze and restart."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        self._argv += ["--appendonly", "no", "--dir", str(workdir)]
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._spawn()
        for _ in range(int(WAIT / POLL)):
            if await self._answers_ping():
                return
            await asyncio.sleep(POLL)
        pytest.fail(f"redis-server did not answer on port {self.port} within {WAIT}s")

    def _spawn(self) -> None:
        # Popen returns at once (it does not wait for the child), so it is
        # fine inside the event loop; SIGSTOP/SIGKILL need the plain process.
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _answers_ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return await reader.readline() == b"+PONG\r\n"
        finally:
            writer.close()

    def kill(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=WAIT)

    def freeze(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.thaw()
            self.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not on PATH: cannot run the Redis restart tests")
    server = PrivateRedis(binary, tmp_path)
    try:
        yield server
    finally:
        server.stop()


# -- helpers ------------------------------------------------------------------


def _channel() -> str:
    return f"pbg-test-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def gateway_instance(backend: BroadcastBackend) -> AsyncIterator[Broadcast]:
    """One gateway instance's broadcast, connected for the block."""
    broadcast = Broadcast(backend=backend)
    async with asyncio.timeout(WAIT):
        await broadcast.connect()
    try:
        yield broadcast
    finally:
        async with asyncio.timeout(WAIT):
            await broadcast.disconnect()  # re-raises if broadcaster's listener died


class Subscriber(Protocol):
    """What ``Broadcast.subscribe`` yields (broadcaster keeps its class private)."""

    async def get(self) -> Event: ...


async def next_event(subscriber: Subscriber) -> Event:
    return await asyncio.wait_for(subscriber.get(), WAIT)


async def wait_for_message(subscriber: Subscriber, message: str) -> list[str]:
    """Wait until ``message`` arrives; return the messages that came before it."""
    before: list[str] = []
    async with asyncio.timeout(WAIT):
        while (event := await subscriber.get()).message != message:
            before.append(event.message)
    return before


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll state that has no event to wait on (a counter, a flag)."""
    for _ in range(int(WAIT / POLL)):
        if condition():
            return
        await asyncio.sleep(POLL)
    pytest.fail(f"not within {WAIT}s: {what}")


def listener_alive(broadcast: Broadcast) -> bool:
    return not broadcast._listener_task.done()


# -- factory, health and the pending-ring inbox (no server needed) -----------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", InProcessBackend),
        ("redis://localhost:6379/0", ResilientRedisBackend),
        ("rediss://user:pw@example.com:6380/1", ResilientRedisBackend),
        ("postgres://postgres@localhost/test", ResilientPostgresBackend),
        ("postgresql://postgres@localhost:5432/test", ResilientPostgresBackend),
    ],
)
def test_factory_picks_the_backend_by_scheme(url: str, kind: type[BroadcastBackend]) -> None:
    assert type(make_broadcast_backend(url)) is kind


@pytest.mark.parametrize("url", ["kafka://localhost:9092", "redis-stream://localhost", "http://x", "localhost"])
def test_factory_rejects_other_schemes(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported BROADCAST_URL scheme"):
        make_broadcast_backend(url)


def test_urls_in_logs_and_errors_hide_the_password() -> None:
    backend = ResilientRedisBackend("redis://user:s3cret@example.com:6379/0")
    assert backend.safe_url == "redis://user:***@example.com:6379/0"


async def test_memory_backend_rings_and_is_always_healthy() -> None:
    backend = make_broadcast_backend("memory://")
    async with gateway_instance(backend) as broadcast, broadcast.subscribe("orders") as rings:
        await broadcast.publish("orders", "7")
        assert await next_event(rings) == Event("orders", "7")
    assert await backend_healthy(backend)


async def test_memory_backend_is_bounded_and_skips_unsubscribed_channels() -> None:
    backend = InProcessBackend("memory://", max_pending=2)
    await backend.connect()
    await backend.subscribe("orders")
    await backend.publish("elsewhere", "0")  # nobody listens: not kept
    for seq in ("1", "2", "3"):  # the third finds the inbox full and is dropped
        await backend.publish("orders", seq)
    assert await asyncio.wait_for(backend.next_published(), WAIT) == Event("orders", "1")
    assert await asyncio.wait_for(backend.next_published(), WAIT) == Event("orders", "2")
    await backend.publish("orders", "4")
    await backend.unsubscribe("orders")  # rings already queued for it are not handed out
    await backend.subscribe("later")
    await backend.publish("later", "6")
    assert await asyncio.wait_for(backend.next_published(), WAIT) == Event("later", "6")


async def test_unknown_backends_are_not_reported_healthy() -> None:
    class Opaque(BroadcastBackend):
        def __init__(self) -> None:
            pass

    assert not await backend_healthy(Opaque())


async def test_pending_rings_keep_the_newest_per_channel_and_stay_bounded() -> None:
    rings = _PendingRings(max_channels=2)
    for seq in range(10_000):
        rings.put(Event("a", str(seq)))
    rings.put(Event("b", RECONNECTED))
    rings.put(Event("b", "10000"))  # must not hide the pending RECONNECTED
    assert len(rings) == 2
    assert [await rings.get(), await rings.get()] == [Event("a", "9999"), Event("b", RECONNECTED)]

    for channel in ("a", "b", "c"):  # a third channel: the oldest pending (a) gives way
        rings.put(Event(channel, "1"))
    assert len(rings) == 2
    assert [await rings.get(), await rings.get()] == [Event("b", "1"), Event("c", "1")]

    waiter = asyncio.create_task(rings.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    rings.put(Event("a", "next"))
    assert await asyncio.wait_for(waiter, WAIT) == Event("a", "next")


@pytest.mark.parametrize(
    ("kind", "server"),
    [
        pytest.param(ResilientRedisBackend, "redis_url", marks=pytest.mark.redis, id="redis"),
        pytest.param(ResilientPostgresBackend, "postgres_url", marks=pytest.mark.postgres, id="postgres"),
    ],
)
async def test_idle_listener_is_not_mistaken_for_dead(
    kind: type[ResilientRedisBackend | ResilientPostgresBackend], server: str, request: pytest.FixtureRequest
) -> None:
    # Liveness checks every 0.1s: a second of silence spans ten of them.
    timings = BackendTimings(liveness_interval=0.1)
    backend = kind(request.getfixturevalue(server), timings=timings)
    async with gateway_instance(backend) as broadcast, broadcast.subscribe(_channel()) as rings:
        for _ in range(10):
            with pytest.raises(TimeoutError):  # no RECONNECTED: it never reconnected
                await asyncio.wait_for(rings.get(), 0.1)
            assert backend.is_listening


# -- Redis ------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_rings_reach_every_instance(redis_url: str) -> None:
    channel = _channel()
    async with (
        gateway_instance(ResilientRedisBackend(redis_url)) as first,
        gateway_instance(ResilientRedisBackend(redis_url)) as second,
        first.subscribe(channel) as first_rings,
        second.subscribe(channel) as second_rings,
    ):
        await second.publish(channel, "41")
        assert await next_event(first_rings) == Event(channel, "41")
        assert await next_event(second_rings) == Event(channel, "41")
        await first.publish(channel, "42")
        assert await next_event(second_rings) == Event(channel, "42")
        assert await next_event(first_rings) == Event(channel, "42")


@pytest.mark.redis
async def test_redis_flood_without_consumer_stays_bounded(redis_url: str) -> None:
    flood, sentinel = _channel(), _channel()
    backend = ResilientRedisBackend(redis_url)
    client = aioredis.Redis.from_url(redis_url, socket_timeout=WAIT)
    await backend.connect()
    try:
        await backend.subscribe(flood)
        await backend.subscribe(sentinel)
        async with client.pipeline(transaction=False) as pipe:
            for seq in range(1, 5001):
                pipe.publish(flood, str(seq))
            await pipe.execute()
        await client.publish(sentinel, "done")  # arrives after the whole flood
        await eventually(lambda: backend.pending_rings == 2, "the sentinel ring was received")
        assert await asyncio.wait_for(backend.next_published(), WAIT) == Event(flood, "5000")
        assert await asyncio.wait_for(backend.next_published(), WAIT) == Event(sentinel, "done")
        assert backend.pending_rings == 0
        await client.publish(flood, "5001")
        assert await asyncio.wait_for(backend.next_published(), WAIT) == Event(flood, "5001")
    finally:
        await client.aclose()
        await backend.disconnect()


@pytest.mark.redis
async def test_redis_restart_while_subscribed(private_redis: PrivateRedis) -> None:
    await private_redis.start()
    channel = _channel()
    listener_backend = ResilientRedisBackend(private_redis.url)
    async with (
        gateway_instance(listener_backend) as listener,
        gateway_instance(ResilientRedisBackend(private_redis.url)) as publisher,
        listener.subscribe(channel) as rings,
    ):
        await publisher.publish(channel, "1")
        assert await next_event(rings) == Event(channel, "1")

        private_redis.kill()
        started = time.monotonic()
        with pytest.raises(BroadcastUnavailable):
            await publisher.publish(channel, "2")
        assert time.monotonic() - started < FAST, "publish must fail fast, not hang"
        assert not await listener_backend.ping()

        await private_redis.start()
        assert await next_event(rings) == Event(channel, RECONNECTED)
        await publisher.publish(channel, "3")
        assert await next_event(rings) == Event(channel, "3")
        assert time.monotonic() - started < WAIT
        assert listener_alive(listener)
        assert await backend_healthy(listener_backend)


@pytest.mark.redis
async def test_redis_frozen_server_is_detected(private_redis: PrivateRedis) -> None:
    # SIGSTOP keeps the sockets open but answers nothing: only timeouts and
    # the listener's liveness PINGs can notice it.
    await private_redis.start()
    channel = _channel()
    listener_backend = ResilientRedisBackend(private_redis.url)
    async with (
        gateway_instance(listener_backend) as listener,
        gateway_instance(ResilientRedisBackend(private_redis.url)) as publisher,
        listener.subscribe(channel) as rings,
    ):
        await publisher.publish(channel, "1")
        assert await next_event(rings) == Event(channel, "1")

        private_redis.freeze()
        started = time.monotonic()
        with pytest.raises(BroadcastUnavailable):
            await publisher.publish(channel, "2")
        assert time.monotonic() - started < 2.5, "publish must give up after its socket timeout"
        await eventually(lambda: not listener_backend.is_listening, "the frozen server was noticed")
        assert time.monotonic() - started < 3.5

        private_redis.thaw()
        # Once thawed, Redis may still run the PUBLISH "2" it had buffered.
        assert set(await wait_for_message(rings, RECONNECTED)) <= {"2"}
        await publisher.publish(channel, "3")
        assert set(await wait_for_message(rings, "3")) <= {"2"}
        assert listener_alive(listener)


@pytest.mark.redis
async def test_redis_down_at_startup(private_redis: PrivateRedis) -> None:
    channel = _channel()
    backend = ResilientRedisBackend(private_redis.url)  # nothing listens there yet
    async with gateway_instance(backend) as broadcast, broadcast.subscribe(channel) as rings:
        assert not backend.is_listening
        assert not await backend_healthy(backend)
        started = time.monotonic()
        with pytest.raises(BroadcastUnavailable):
            await broadcast.publish(channel, "1")
        assert time.monotonic() - started < FAST

        await private_redis.start()
        # Rings may have been missed while it was down: the listener is told.
        assert await next_event(rings) == Event(channel, RECONNECTED)
        await broadcast.publish(channel, "2")
        assert await next_event(rings) == Event(channel, "2")
        assert listener_alive(broadcast)


# -- PostgreSQL ---------------------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_rings_reach_every_instance(postgres_url: str) -> None:
    channel = _channel()
    async with (
        gateway_instance(ResilientPostgresBackend(postgres_url)) as first,
        gateway_instance(ResilientPostgresBackend(postgres_url)) as second,
        first.subscribe(channel) as first_rings,
        second.subscribe(channel) as second_rings,
    ):
        await second.publish(channel, "41")
        assert await next_event(first_rings) == Event(channel, "41")
        assert await next_event(second_rings) == Event(channel, "41")
        await first.publish(channel, "42")
        assert await next_event(second_rings) == Event(channel, "42")
        assert await next_event(first_rings) == Event(channel, "42")


@pytest.mark.postgres
async def test_postgres_flood_without_consumer_stays_bounded(postgres_url: str) -> None:
    flood, sentinel = _channel(), _channel()
    backend = ResilientPostgresBackend(postgres_url)
    admin = await asyncpg.connect(postgres_url, timeout=WAIT)
    await backend.connect()
    try:
        await backend.subscribe(flood)
        await backend.subscribe(sentinel)
        await admin.execute("SELECT pg_notify($1, g::text) FROM generate_series(1, 5000) AS g", flood)
        await admin.execute("SELECT pg_notify($1, 'done')", sentinel)  # after the flood
        await eventually(lambda: backend.pending_rings == 2, "the sentinel notification was received")
        assert await asyncio.wait_for(backend.next_published(), WAIT) == Event(flood, "5000")
        assert await asyncio.wait_for(backend.next_published(), WAIT) == Event(sentinel, "done")
        assert backend.pending_rings == 0
        await admin.execute("SELECT pg_notify($1, '5001')", flood)
        assert await asyncio.wait_for(backend.next_published(), WAIT) == Event(flood, "5001")
    finally:
        await admin.close()
        await backend.disconnect()


@pytest.mark.postgres
async def test_postgres_terminated_connections_recover(postgres_url: str) -> None:
    channel, app = _channel(), _channel()
    listener_backend = ResilientPostgresBackend(f"{postgres_url}?application_name={app}")
    async with (
        gateway_instance(listener_backend) as listener,
        gateway_instance(ResilientPostgresBackend(postgres_url)) as publisher,
        listener.subscribe(channel) as rings,
    ):
        await listener.publish(channel, "1")  # opens its publishing connection too
        assert await next_event(rings) == Event(channel, "1")

        admin = await asyncpg.connect(postgres_url, timeout=WAIT)
        try:
            terminated = await admin.fetch(
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1", app
            )
        finally:
            await admin.close()
        assert [row["ok"] for row in terminated] == [True, True]  # LISTEN + NOTIFY connections

        started = time.monotonic()
        assert await next_event(rings) == Event(channel, RECONNECTED)
        assert time.monotonic() - started < 3.0
        await publisher.publish(channel, "2")
        assert await next_event(rings) == Event(channel, "2")
        await listener.publish(channel, "3")  # over a fresh publishing connection
        assert await next_event(rings) == Event(channel, "3")
        assert listener_alive(listener)
        assert await backend_healthy(listener_backend)


async def test_postgres_refuses_channel_names_it_would_truncate() -> None:
    backend = ResilientPostgresBackend("postgresql://postgres@127.0.0.1:1/test")  # never connected
    for too_long in ("x" * 64, "é" * 32):
        with pytest.raises(ValueError, match="channel names"):
            await backend.subscribe(too_long)
        with pytest.raises(ValueError, match="channel names"):
            await backend.publish(too_long, "1")


@pytest.mark.postgres
async def test_postgres_unreachable() -> None:
    channel = _channel()
    backend = ResilientPostgresBackend(f"postgresql://postgres:s3cret@127.0.0.1:{_free_port()}/test")
    async with gateway_instance(backend) as broadcast, broadcast.subscribe(channel) as rings:
        assert not backend.is_listening
        assert not await backend_healthy(backend)
        started = time.monotonic()
        with pytest.raises(BroadcastUnavailable) as raised:
            await broadcast.publish(channel, "1")
        assert time.monotonic() - started < FAST
        assert "s3cret" not in str(raised.value)
        with pytest.raises(TimeoutError):  # nothing to deliver, and no error either
            await asyncio.wait_for(rings.get(), 0.5)
        assert listener_alive(broadcast)

"""``MAX_CONNECTIONS_PER_TOKEN`` across instances: with a Redis broadcast
every instance counts a token's sockets in Redis, so the cap is the
deployment's; an instance that vanishes without giving its places back
loses them when they expire; with Redis down each process counts its own
sockets and refuses no one for want of Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from billing.onboarding import seed_demo
from gateway.socket_slots import RedisSocketSlots
from models.database import Database
from tests.conftest import sqlite_settings
from tests.support.gateway import serve_gateway
from tests.support.processes import GatewayProcess, PrivateRedis, running_gateways
from tests.support.sockets import accepted, accepted_soon, assert_full, close_all, closed_with, fill

pytestmark = [pytest.mark.redis]

CAP = 3
GOING_AWAY = 1012  # uvicorn closes its sockets with it when it shuts down


@pytest.fixture
def two_instances(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, list[GatewayProcess]]]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"
    env = {"DATABASE_URL": database_url, "BROADCAST_URL": redis_url, "MAX_CONNECTIONS_PER_TOKEN": str(CAP)}
    with running_gateways(["A", "B"], env, tmp_path) as gateways:
        yield database_url, gateways


async def test_instances_sharing_redis_share_each_tokens_cap(
    two_instances: tuple[str, list[GatewayProcess]],
) -> None:
    database_url, (a, b) = two_instances
    db = Database(database_url)
    try:
        tenant = await seed_demo(db)
    finally:
        await db.dispose()
    owner, other = tenant.tokens["PARTNER_OWNER"], tenant.tokens["PARTNER_ADMIN"]

    on_a = await fill(a.ws_url, owner, 2)
    on_b = await fill(b.ws_url, owner, 1)
    # Three in all, not three per instance.
    await assert_full(a.ws_url, owner)
    await assert_full(b.ws_url, owner)
    await close_all([await accepted(b.ws_url, other)])
    # A place given back on A is free on B.
    await on_a.pop().close()
    on_b.append(await accepted_soon(b.ws_url, owner))
    await assert_full(a.ws_url, owner)

    # An instance shutting down gives its places back as it closes its sockets.
    a.stop()
    assert [(await closed_with(conn))[0] for conn in on_a] == [GOING_AWAY]
    on_b.append(await accepted_soon(b.ws_url, owner, within=1.0))
    await assert_full(b.ws_url, owner)
    await close_all(on_b)


async def test_a_vanished_instances_places_expire(redis_url: str) -> None:
    prefix = f"pbg:test-sockets:{time.time_ns()}:"
    vanishing = RedisSocketSlots(redis_url, 2, prefix=prefix, ttl_s=1.0, refresh_s=0.2)
    staying = RedisSocketSlots(redis_url, 2, prefix=prefix, ttl_s=1.0, refresh_s=0.2)
    refreshing = asyncio.create_task(vanishing.run())
    try:
        assert [await vanishing.take("tok", "a1"), await vanishing.take("tok", "a2")] == [True, True]
        # Refreshed, its places outlive their expiry.
        await asyncio.sleep(1.5)
        assert not await staying.take("tok", "b1")
        # It stops refreshing without giving anything back, as a killed
        # process would: its places expire.
        refreshing.cancel()
        await asyncio.sleep(1.2)
        assert [await staying.take("tok", slot) for slot in ("b1", "b2", "b3")] == [True, True, False]
    finally:
        refreshing.cancel()
        await vanishing.aclose()
        await staying.aclose()


async def test_without_redis_each_process_counts_alone_and_refuses_no_one(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    settings = sqlite_settings(tmp_path, broadcast_url=private_redis.url, max_connections_per_token=CAP)
    async with serve_gateway(settings) as gateway:
        tenant = await gateway.tenant()
        owner, other = tenant.tokens["PARTNER_OWNER"], tenant.tokens["PARTNER_ADMIN"]
        url = f"ws://127.0.0.1:{gateway.port}/graphql"
        held = await fill(url, owner, 1)
        private_redis.kill()

        # Redis is gone: sockets are still accepted, up to the cap in this process.
        started = time.monotonic()
        held += await fill(url, owner, CAP - 1)
        await assert_full(url, owner)
        bystander = await accepted(url, other)
        assert time.monotonic() - started < 5.0
        await held.pop().close()
        held.append(await accepted_soon(url, owner))
        await close_all([*held, bystander])

"""Redis goes away and comes back while two instances serve subscribers.

The instances use a private redis-server (this machine's shared one is never
touched), killed with SIGKILL as a crash or a failover would, then started
again on the same port. Stored events are the truth, so nothing is lost
meanwhile: live subscribers are served by polling, a dashboard resuming from
its last cursor gets every event it missed, and once Redis is back the
instances reconnect by themselves and rings deliver promptly again.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from redis import asyncio as aioredis
from sqlmodel import col, select

from events.hub import CHANNEL
from models import OrderEvent
from models.database import Database
from tests.scale.helpers import CHANGES, Buyer, Received, buy, eventually, new_buyer, until_succeeded, warm_up
from tests.support.processes import GatewayProcess, PrivateRedis, running_gateways

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

T = TypeVar("T")
PROMPT_S = 1.0  # a ring-delivered event; polling alone takes up to the 2 s poll interval


async def _readiness(*gateways: GatewayProcess) -> list[tuple[int, bool, str]]:
    answers = [await gateway.readyz() for gateway in gateways]
    return [(status, body["database"], body["broadcast"]) for status, body in answers]


async def _listeners(redis_url: str) -> int:
    """How many connections are subscribed to the doorbell channel."""
    client = aioredis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        counts = await client.pubsub_numsub(CHANNEL)
        return int(counts[0][1])
    finally:
        await client.aclose()


async def _stored_events(db: Database, buyer: Buyer) -> list[tuple[str, str]]:
    async with db.orm() as session:
        query = select(OrderEvent).where(OrderEvent.customer_id == buyer.customer_id)
        rows = await session.exec(query.order_by(col(OrderEvent.seq)))
        return [(e.order_id, e.status) for e in rows.all()]


def _as_tuples(received: list[Received]) -> list[tuple[str, str]]:
    return [(r.event["order"]["id"], r.event["status"]) for r in received]


async def test_instances_ride_out_a_redis_restart(
    pg_url: str, pg_db: Database, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": pg_url, "BROADCAST_URL": private_redis.url, "SANDBOX_CONFIRM_DELAY_MS": "50"}
    env["LOG_LEVEL"] = "INFO"  # the backends log the outage and the recovery at WARNING and INFO
    with running_gateways(["A", "B"], env, tmp_path) as (a, b):
        await eventually(lambda: _is(_listeners(private_redis.url), 2), "both instances listening", timeout=10)
        buyer = await new_buyer(pg_db, via=a)

        async with b.websocket(buyer.token) as live, a.client(buyer.token) as client:
            live_op = await live.subscribe(CHANGES, {"c": buyer.customer_id})
            await warm_up(live, live_op, client, buyer)
            # A dashboard that will be disconnected while Redis is down.
            async with b.websocket(buyer.token) as dashboard:
                dashboard_op = await dashboard.subscribe(CHANGES, {"c": buyer.customer_id})
                last_seen = await warm_up(dashboard, dashboard_op, client, buyer)
            before = await until_succeeded(live, live_op, {last_seen.event["order"]["id"]})

            private_redis.kill()
            await eventually(
                lambda: _is(_readiness(a, b), [(200, True, "degraded")] * 2),
                "both degraded, still ready",
                timeout=10,
            )
            # Orders go on being placed and confirmed; their rings cannot be sent.
            missed = [await buy(client, buyer) for _ in range(2)]
            during = await until_succeeded(live, live_op, {order["id"] for order in missed})

            private_redis.start()
            await eventually(lambda: _is(_readiness(a, b), [(200, True, "ok")] * 2), "both ready again", timeout=15)
            await eventually(lambda: _is(_listeners(private_redis.url), 2), "both listening again", timeout=10)
            after = await buy(client, buyer)
            prompt = await until_succeeded(live, live_op, {after["id"]})
            with pytest.raises(TimeoutError):
                await live.receive(timeout=0.5)

        # The dashboard comes back and resumes from the last event it saw.
        async with b.websocket(buyer.token) as dashboard:
            resumed_op = await dashboard.subscribe(
                CHANGES, {"c": buyer.customer_id, "after": last_seen.event["cursor"]}
            )
            resumed = await until_succeeded(dashboard, resumed_op, {o["id"] for o in [*missed, after]})
            with pytest.raises(TimeoutError):
                await dashboard.receive(timeout=0.5)

    stored = await _stored_events(pg_db, buyer)
    # The live subscriber got every event stored since it was surely
    # registered, exactly once, in order, outage or not.
    since_live = stored[-len(before + during + prompt) :]
    assert _as_tuples(before + during + prompt) == since_live
    assert since_live[0] == (last_seen.event["order"]["id"], "PENDING")
    late = [(r.event["status"], round(r.latency_s, 3)) for r in prompt if r.latency_s > PROMPT_S]
    assert not late, f"after the restart, events still arrived late (by polling, not rings?): {late}"
    # The resuming dashboard got exactly what it missed, in order, once each.
    assert _as_tuples(resumed) == stored[stored.index((last_seen.event["order"]["id"], "SUCCEEDED")) + 1 :]
    assert {r.event["order"]["id"] for r in resumed} == {o["id"] for o in [*missed, after]}
    assert last_seen.event["cursor"] not in {r.event["cursor"] for r in resumed}
    assert len({r.event["cursor"] for r in resumed}) == len(resumed)
    for gateway in (a, b):
        log = gateway.log_text()
        assert "lost" in log and "reconnecting" in log and "back after" in log, gateway.log_tail()
        assert "Traceback" not in log, gateway.log_tail()


async def _is(value: Awaitable[T], expected: T) -> bool:
    return await value == expected

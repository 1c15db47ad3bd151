"""Two gateway processes, A and B, on one PostgreSQL database and this
machine's Redis, as a scaled-out deployment runs them.

Both start at once on an empty database, so their startups race to migrate it
(the schema lock lets one do it). Each is a real ``uvicorn gateway.asgi:app``
process; the tests talk to them over HTTP and WebSockets only, and read the
database directly to check what was stored.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import asyncio as aioredis
from sqlalchemy import func
from sqlmodel import col, select

from events.hub import CHANNEL
from models import Order, OrderEvent, OrderStatus, SandboxPayment
from models.database import Database
from tests.scale.helpers import (
    BUY,
    CHANGES,
    assert_clean_logs,
    buy,
    eventually,
    new_buyer,
    total_licenses,
    until_succeeded,
    warm_up,
)
from tests.support.processes import GatewayProcess, running_gateways

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CROSS_INSTANCE_DEADLINE_S = 1.0
PURCHASES = 200
REPLAYS = 40  # purchases sent a second time, same idempotency key, to the other instance


@pytest.fixture(scope="module")
def instances(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[GatewayProcess]]:
    # A short confirmation delay makes the sandbox's confirmation race the
    # charge's own answer often, which is what the purchase test wants.
    env = {"DATABASE_URL": pg_url, "BROADCAST_URL": redis_url, "SANDBOX_CONFIRM_DELAY_MS": "50"}
    with running_gateways(["A", "B"], env, Path(tmp_path_factory.mktemp("logs"))) as gateways:
        yield gateways


@pytest.fixture
def a(instances: list[GatewayProcess]) -> GatewayProcess:
    return instances[0]


@pytest.fixture
def b(instances: list[GatewayProcess]) -> GatewayProcess:
    return instances[1]


@pytest.fixture
async def rings(redis_url: str) -> AsyncIterator[list[str]]:
    """Every doorbell ring published on Redis while the test runs."""
    # No socket timeout: the listener may sit idle for a while between rings.
    client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    heard: list[str] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                heard.append(message["data"].decode())

    task = asyncio.create_task(listen())
    try:
        yield heard
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_both_instances_are_ready(a: GatewayProcess, b: GatewayProcess) -> None:
    for gateway in (a, b):
        assert await gateway.readyz() == (
            200,
            {"status": "ready", "database": True, "broadcast": "ok", "payments": "sandbox"},
        )


async def test_a_confirmation_placed_on_a_reaches_b_within_a_second_and_no_other_partner(
    a: GatewayProcess, b: GatewayProcess, pg_db: Database, rings: list[str]
) -> None:
    buyer = await new_buyer(pg_db, via=a)
    other = await new_buyer(pg_db, via=a)

    async with (
        b.websocket(buyer.token) as watcher,
        b.websocket(other.token) as bystander,
        a.client(buyer.token) as client,
        a.client(other.token) as other_client,
    ):
        mine = await watcher.subscribe(CHANGES, {"c": buyer.customer_id})
        # The other partner's subscriber watches every customer of its partner.
        theirs = await bystander.subscribe(CHANGES, {})
        await warm_up(watcher, mine, client, buyer)
        # The bystander's own order reaches it (it is live); not the watcher.
        await warm_up(bystander, theirs, other_client, other)

        orders = [await buy(client, buyer, quantity=1) for _ in range(3)]
        # Placed on A, each order is also confirmed by the sandbox on A.
        received = await until_succeeded(watcher, mine, {order["id"] for order in orders})
        with pytest.raises(TimeoutError):
            await bystander.receive(timeout=1.0)
        with pytest.raises(TimeoutError):
            await watcher.receive(timeout=0.2)

    async with pg_db.orm() as session:
        query = select(OrderEvent).where(col(OrderEvent.order_id).in_([order["id"] for order in orders]))
        stored = (await session.exec(query.order_by(col(OrderEvent.seq)))).all()
    # B delivered every stored event of those orders, in order, once each, and nothing else.
    assert [(r.event["order"]["id"], r.event["status"]) for r in received] == [(e.order_id, e.status) for e in stored]
    late = [(r.event["status"], round(r.latency_s, 3)) for r in received if r.latency_s > CROSS_INSTANCE_DEADLINE_S]
    assert not late, f"events reached B more than {CROSS_INSTANCE_DEADLINE_S}s after their commit on A: {late}"

    # The rings travelled through Redis: one per event, carrying its seq.
    seqs = {str(e.seq) for e in stored}
    await eventually(lambda: _heard(rings, seqs), "every event's ring heard on Redis", timeout=5)
    assert_clean_logs(a, b)


async def _heard(rings: list[str], seqs: set[str]) -> bool:
    return seqs <= set(rings)


async def test_concurrent_purchases_over_both_instances_are_exact(
    a: GatewayProcess, b: GatewayProcess, pg_db: Database
) -> None:
    buyer = await new_buyer(pg_db, via=a)
    quantities = [1 + i % 3 for i in range(PURCHASES)]

    async with a.client(buyer.token) as on_a, b.client(buyer.token) as on_b:
        before = await total_licenses(on_a, buyer)
        clients = (on_a, on_b)

        async def purchase(i: int, replay: bool = False) -> tuple[int, int, dict[str, Any]]:
            client = clients[(i + replay) % 2]  # a replay goes to the other instance
            variables = {"c": buyer.customer_id, "p": buyer.product_id, "n": quantities[i], "key": f"bulk-{i}"}
            response = await client.post(BUY, variables)
            return i, response.status_code, response.json()

        started = time.monotonic()
        async with asyncio.timeout(90):
            answers = await asyncio.gather(
                *(purchase(i) for i in range(PURCHASES)), *(purchase(i, replay=True) for i in range(REPLAYS))
            )
        placed_in = time.monotonic() - started

        failures = [(i, status, body) for i, status, body in answers if status != 200 or body.get("errors")]
        assert not failures, f"{len(failures)} requests failed, e.g. {failures[:3]}"
        user_errors = [body["data"]["buyLicenses"]["userErrors"] for _, _, body in answers]
        assert all(errors == [] for errors in user_errors), Counter(str(e) for e in user_errors if e)
        order_of: dict[int, set[str]] = defaultdict(set)
        for i, _, body in answers:
            order_of[i].add(body["data"]["buyLicenses"]["order"]["id"])
        assert all(len(ids) == 1 for ids in order_of.values()), "a replayed key made a second order"
        order_ids = {ids.pop() for ids in order_of.values()}
        assert len(order_ids) == PURCHASES

        statuses: Counter[str] = Counter()

        async def all_settled() -> bool:
            async with pg_db.orm() as session:
                query = select(Order.status).where(Order.customer_id == buyer.customer_id)
                statuses.clear()
                statuses.update((await session.exec(query)).all())
            return statuses.total() == PURCHASES and all(OrderStatus(s).is_terminal for s in statuses)

        await eventually(all_settled, lambda: f"{PURCHASES} orders settled (statuses: {statuses})", timeout=30)
        after = await total_licenses(on_b, buyer)

    async with pg_db.orm() as session:
        orders = (await session.exec(select(Order).where(Order.customer_id == buyer.customer_id))).all()
        payments = (await session.exec(select(SandboxPayment).where(col(SandboxPayment.order_id).in_(order_ids)))).all()
        events = (
            await session.exec(
                select(OrderEvent.order_id, OrderEvent.status)
                .where(OrderEvent.customer_id == buyer.customer_id)
                .order_by(col(OrderEvent.seq))
            )
        ).all()
        distinct_payment_orders = (
            await session.exec(
                select(func.count(func.distinct(SandboxPayment.order_id))).where(
                    col(SandboxPayment.order_id).in_(order_ids)
                )
            )
        ).one()

    assert {o.id for o in orders} == order_ids
    assert Counter(o.status for o in orders) == {OrderStatus.SUCCEEDED: PURCHASES}
    assert after - before == sum(quantities) == sum(o.quantity for o in orders)
    # Exactly one charge per order, for exactly the order's total.
    assert len(payments) == distinct_payment_orders == PURCHASES
    assert {p.order_id: p.amount_minor for p in payments} == {o.id: o.total_minor for o in orders}
    assert all(p.status == "succeeded" for p in payments)
    history: dict[str, list[str]] = defaultdict(list)
    for order_id, status in events:
        history[order_id].append(status)
    # PROCESSING is skipped when the confirmation overtakes the charge's own
    # answer (status only moves forward); nothing is ever recorded twice.
    assert Counter(tuple(statuses) for statuses in history.values()).keys() <= {
        ("PENDING", "PROCESSING", "SUCCEEDED"),
        ("PENDING", "SUCCEEDED"),
    }, Counter(tuple(statuses) for statuses in history.values())
    assert len(history) == PURCHASES
    assert_clean_logs(a, b)
    print(f"{PURCHASES} purchases + {REPLAYS} replays over two instances answered in {placed_in:.1f}s")

"""RATE_LIMIT across instances: with a Redis broadcast every instance draws
from the same per-token bucket, kept in Redis; without Redis each counts alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from billing.onboarding import seed_demo
from models.database import Database
from tests.support.processes import GatewayProcess, running_gateways

pytestmark = [pytest.mark.redis]

VIEWER = "{ viewer { id } }"


@pytest.fixture
def two_instances(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, list[GatewayProcess]]]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"
    env = {"DATABASE_URL": database_url, "BROADCAST_URL": redis_url, "RATE_LIMIT": "4/minute"}
    with running_gateways(["A", "B"], env, tmp_path) as gateways:
        yield database_url, gateways


async def test_instances_sharing_redis_share_each_tokens_budget(
    two_instances: tuple[str, list[GatewayProcess]],
) -> None:
    database_url, (a, b) = two_instances
    db = Database(database_url)
    try:
        token = (await seed_demo(db)).tokens["PARTNER_OWNER"]
    finally:
        await db.dispose()

    statuses = []
    for gateway in (a, b, a, b, a, b):
        async with gateway.client(token) as client:
            statuses.append((await client.post(VIEWER)).status_code)

    # Four requests a minute in all, not four per instance.
    assert statuses == [200, 200, 200, 200, 429, 429]

"""A token revoked by ``partner-billing revoke-token`` closes its sockets on
every instance: two ``uvicorn`` processes on PostgreSQL and Redis, the command
run as its own process. Their periodic re-check is set to 10 s, so closing
within 5 s is the broadcast ring's doing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from billing.onboarding import seed_demo
from models.database import Database
from tests.scale.helpers import CHANGES, assert_clean_logs
from tests.support.gateway import GraphQLWebSocket
from tests.support.processes import REPO_ROOT, GatewayProcess, running_gateways

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

RING_DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def instances(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[GatewayProcess]]:
    env = {"DATABASE_URL": pg_url, "BROADCAST_URL": redis_url, "TOKEN_RECHECK_INTERVAL_S": "10"}
    with running_gateways(["A", "B"], env, Path(tmp_path_factory.mktemp("logs"))) as gateways:
        yield gateways


async def _revoke(token: str, pg_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": pg_url, "BROADCAST_URL": redis_url}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "revoke-token", token],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _close_code(ws: GraphQLWebSocket, deadline: float) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_revoke_token_closes_its_sockets_on_every_instance(
    instances: list[GatewayProcess], pg_db: Database, pg_url: str, redis_url: str
) -> None:
    a, b = instances
    tenant = await seed_demo(pg_db)
    token, other = tenant.tokens["PARTNER_OWNER"], tenant.tokens["PARTNER_FINANCE_ADMIN"]
    async with a.websocket(token) as on_a, b.websocket(token) as on_b, b.websocket(other) as bystander:
        for ws in (on_a, on_b, bystander):
            await ws.subscribe(CHANGES)
        revoked = await _revoke(token, pg_url, redis_url)
        assert revoked.returncode == 0, revoked.stderr
        start = time.monotonic()
        codes = await asyncio.gather(*(_close_code(ws, start + RING_DEADLINE_S) for ws in (on_a, on_b)))
        assert codes == [4401, 4401]
        assert time.monotonic() - start < RING_DEADLINE_S
        await asyncio.wait_for(await bystander.conn.ping(), 5)
    for gateway in (a, b):
        async with gateway.client(token) as client:
            assert await client.error_code("{ viewer { id } }") == "UNAUTHENTICATED"
    assert_clean_logs(a, b)

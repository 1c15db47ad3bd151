"""``/readyz`` answers 200 while the database is reachable, and says whether
the broadcast is ("ok") or not ("degraded": the instance still serves,
subscriptions by polling, so Redis going down must not take every instance
out of the load balancer). The database down: 503.
(Redis vanishing under running instances is in test_redis_restart.py.)"""

from __future__ import annotations

import pytest

from tests.scale.conftest import PostgresServer, pg_settings
from tests.scale.helpers import eventually
from tests.support.gateway import GatewayServer, free_port, serve_gateway

pytestmark = pytest.mark.postgres


async def _readyz(gateway: GatewayServer) -> tuple[int, dict[str, object]]:
    response = await gateway.http.get("/readyz")
    return response.status_code, response.json()


@pytest.mark.redis
async def test_ready_with_postgres_and_redis(pg_url: str, redis_url: str) -> None:
    async with serve_gateway(pg_settings(pg_url, broadcast_url=redis_url)) as gateway:
        assert await _readyz(gateway) == (
            200,
            {"status": "ready", "database": True, "broadcast": "ok", "payments": "sandbox"},
        )


async def test_ready_but_degraded_while_the_broadcast_is_unreachable(pg_url: str) -> None:
    """Nothing listens on that port: the gateway starts (the backend keeps
    retrying in the background), serves, and says the broadcast is degraded."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with serve_gateway(pg_settings(pg_url, broadcast_url=dead_redis)) as gateway:
        assert await _readyz(gateway) == (
            200,
            {"status": "ready", "database": True, "broadcast": "degraded", "payments": "sandbox"},
        )


async def test_not_ready_once_the_database_is_gone(postgres: PostgresServer) -> None:
    name = postgres.create_database()
    try:
        async with serve_gateway(pg_settings(postgres.url(name))) as gateway:
            assert (await _readyz(gateway))[0] == 200
            postgres.drop_database(name)  # closes the gateway's connections too

            async def unready() -> bool:
                return await _readyz(gateway) == (
                    503,
                    {"status": "unavailable", "database": False, "broadcast": "ok", "payments": "sandbox"},
                )

            await eventually(unready, "/readyz reports the database down", timeout=10)
    finally:
        postgres.drop_database(name)

"""Several uvicorn workers behind one port, with PROMETHEUS_MULTIPROC_DIR:
whichever worker answers a scrape reports every worker's counts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.observability.support import Scrape, observed_gateway
from tests.support.services import require_redis

pytestmark = pytest.mark.redis

MAX_REQUESTS = 400


def workers_that_counted(directory: Path, outcome: bytes) -> int:
    """How many worker processes have a value for this outcome: each keeps its
    own counter file (counter_<pid>.db) holding the label values as text."""
    return sum(outcome in path.read_bytes() for path in directory.glob("counter_*.db"))


async def test_a_scrape_reports_every_workers_counts(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {
        "WEB_CONCURRENCY": "2",  # uvicorn's --workers default
        "BROADCAST_URL": require_redis(),
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    with observed_gateway(tmp_path, env) as gateway:
        # A new connection per request, until both workers have answered some.
        sent = 0
        no_keep_alive = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=gateway.process.url, limits=no_keep_alive, timeout=10) as http:
            while sent < 20 or workers_that_counted(shared, b"UNAUTHENTICATED") < 2:
                assert sent < MAX_REQUESTS, "one worker answered every request"
                body = (await http.post("/graphql", json={"query": "{ viewer { id } }"})).json()
                assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
                sent += 1
            scrapes = [Scrape.parse((await http.get("/metrics")).text) for _ in range(10)]

    counted = {s.value("pbg_graphql_operations_total", type="query", outcome="UNAUTHENTICATED") for s in scrapes}
    assert counted == {sent}
    assert {s.value("pbg_graphql_operation_seconds_count", type="query") for s in scrapes} == {sent}

"""Hostile documents: the limit checks cost time linear in the document, so no
arrangement of fragments, aliases or repeated fields can stall the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import SHARED_LOOP, error_codes, module_gateway, shared_gateway  # noqa: F401 - fixtures
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, serve_gateway
from tests.support.processes import GatewayProcess

pytestmark = SHARED_LOOP

# Before the limits were memoised, 21 levels took 13 s and froze the server;
# 40 would take days. Refusing it must take milliseconds: the guard is generous
# so a loaded CI machine never flakes, and still fails an exponential check.
GUARD_S = 2.0


def fragment_bomb(levels: int, leaf: str = "viewer { id }") -> str:
    """``query {...F0}``, each fragment spreading the next one twice."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ {leaf} }}")
    return "query { ...F0 } " + " ".join(fragments)


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway in its own process, so a stalled server cannot stall the test."""
    workdir = tmp_path_factory.mktemp("limits")
    process = GatewayProcess("limits", {"DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'gw.sqlite3'}"}, workdir)
    process.start()
    yield process
    process.stop()


async def test_fragment_bomb_is_refused_at_once_and_the_server_stays_responsive(
    gateway_process: GatewayProcess,
) -> None:
    async with httpx.AsyncClient(base_url=gateway_process.url, timeout=GUARD_S) as http:
        started = time.monotonic()
        bombs = [http.post("/graphql", json={"query": fragment_bomb(40)}) for _ in range(5)]
        health = http.get("/healthz")
        *answers, healthz = await asyncio.gather(*bombs, health)
        elapsed = time.monotonic() - started

    assert healthz.status_code == 200
    for answer in answers:
        body = answer.json()
        assert body["data"] is None
        assert error_codes(body) == ["QUERY_TOO_COMPLEX"], body
    assert elapsed < GUARD_S


async def test_every_bomb_shape_is_refused_within_the_guard(gateway_process: GatewayProcess) -> None:
    repeated = "{ " + " ".join("viewer { id }" for _ in range(390)) + " }"
    aliased_bomb = fragment_bomb(30, leaf="a: viewer { id }")
    largest_bomb = fragment_bomb(190)  # about as many fragments as 2,000 tokens allow
    nested = "{ " + "viewer { partner { " * 200 + "id" + " } }" * 200 + " }"
    async with httpx.AsyncClient(base_url=gateway_process.url, timeout=GUARD_S) as http:
        for document in (repeated, aliased_bomb, largest_bomb, nested):
            started = time.monotonic()
            body = (await http.post("/graphql", json={"query": document})).json()
            assert time.monotonic() - started < GUARD_S
            assert error_codes(body) == ["QUERY_TOO_COMPLEX"], (document[:60], body)


async def test_aliased_introspection_counts_toward_the_alias_limit(gateway: GatewayServer) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"s{i}: __schema {{ queryType {{ name }} }}" for i in range(n)) + " }"

    answered = await gateway.http.post("/graphql", json={"query": aliased(50)})
    assert len(answered.json()["data"]) == 50
    refused = (await gateway.http.post("/graphql", json={"query": aliased(51)})).json()
    assert refused["data"] is None
    assert error_codes(refused) == ["QUERY_TOO_COMPLEX"]


async def test_fragments_are_measured_as_written_where_they_are_spread(gateway: GatewayServer) -> None:
    # One fragment spread in two places counts its fields and aliases twice:
    # the work done is done twice.
    fragment = "fragment V on Viewer { " + " ".join(f"a{i}: id" for i in range(26)) + " }"
    twice = "{ one: viewer { ...V } } " + fragment
    thrice = "{ one: viewer { ...V } two: viewer { ...V } } " + fragment
    assert error_codes((await gateway.http.post("/graphql", json={"query": twice})).json()) == ["UNAUTHENTICATED"]
    body = (await gateway.http.post("/graphql", json={"query": thrice})).json()
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]


async def test_introspection_off_refuses_schema_queries(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, introspection=False)) as gateway:
        for document in ("{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'):
            body = (await gateway.http.post("/graphql", json={"query": document})).json()
            assert body["data"] is None
            assert set(error_codes(body)) == {"BAD_USER_INPUT"}
            assert "introspection" in body["errors"][0]["message"].lower()
        # __typename is not introspection of the schema: clients (Apollo, urql) add it everywhere
        typename = (await gateway.http.post("/graphql", json={"query": "{ __typename }"})).json()
        assert typename["data"] == {"__typename": "Query"}
        # Nor do misspelt fields name the real ones ("Did you mean …?").
        misspelt = (await gateway.http.post("/graphql", json={"query": "{ viewr { id } }"})).json()
        assert error_codes(misspelt) == ["BAD_USER_INPUT"]
        assert "viewer" not in misspelt["errors"][0]["message"], misspelt

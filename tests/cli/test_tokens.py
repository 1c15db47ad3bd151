"""API tokens over their whole life, as an operator and a client see them:
``create-token``, ``list-tokens`` and ``revoke-token`` run as processes
against the SQLite file a real gateway serves, the token used over HTTP and a
real WebSocket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlmodel import col, update

from models import ApiToken
from tests.cli.test_cli import Result, assert_clean_failure, cli
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLWebSocket, serve_gateway

VIEWER = "{ viewer { id } }"
CHANGES = "subscription { orderStatusChanged { status } }"
# API.md: a socket signed in with a revoked or expired token is closed within 10 s.
CLOSE_DEADLINE_S = 10.0


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[GatewayServer, Path]]:
    database = tmp_path / "tokens.sqlite3"
    # The defaults that matter here (TOKEN_RECHECK_INTERVAL_S=5, memory://).
    settings = sqlite_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{database}")
    async with serve_gateway(settings) as gateway:
        yield gateway, database


async def _user(database: Path) -> dict[str, Any]:
    """A partner with one owner, made by the command line; returns the owner (with its first token)."""
    partner = (await cli(database, "create-partner", "--json", "Token MSP")).json()
    owner = await cli(
        database,
        "create-user",
        "--json",
        "--partner",
        partner["id"],
        *("--email", "o@t.example"),
        *("--role", "PARTNER_OWNER"),
    )
    assert owner.code == 0, owner.stderr
    return {**owner.json(), "partner": partner["id"]}


async def _listed(database: Path, partner: str) -> tuple[Result, list[dict[str, Any]]]:
    listed = await cli(database, "list-tokens", "--json", "--partner", partner)
    assert listed.code == 0, listed.stderr
    tokens: list[dict[str, Any]] = listed.json()
    return listed, tokens


async def _status(gateway: GatewayServer, token: str) -> str | None:
    """The error code of ``viewer`` with this token, or None when it worked."""
    body = await gateway.client(token).execute(VIEWER)
    errors = body.get("errors")
    return errors[0]["extensions"]["code"] if errors else None


async def _closed_with(ws: GraphQLWebSocket, deadline: float) -> int:
    """Wait (bounded) for the server to close the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


async def test_create_list_and_use_a_token_with_an_expiry(served: tuple[GatewayServer, Path]) -> None:
    gateway, database = served
    owner = await _user(database)

    created = await cli(database, "create-token", "--json", "--user", owner["id"], "--expires-in-days", "30")
    assert created.code == 0, created.stderr
    issued = created.json()
    assert set(issued) == {"id", "token", "expiresAt"} and issued["id"].startswith("tok_")
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)
    assert await _status(gateway, issued["token"]) is None

    listed, tokens = await _listed(database, owner["partner"])
    assert [t["id"] for t in tokens][-1] == issued["id"]
    for token in tokens:
        assert set(token) == {"id", "userId", "label", "createdAt", "lastUsedAt", "expiresAt", "revokedAt"}
        assert token["userId"] == owner["id"] and token["revokedAt"] is None
    assert tokens[-1]["expiresAt"] == issued["expiresAt"] and tokens[0]["expiresAt"] is None
    # Never the token itself, in JSON or as text.
    text = await cli(database, "list-tokens", "--partner", owner["partner"])
    for output in (listed.stdout, text.stdout):
        assert issued["token"] not in output and owner["token"] not in output and "pbg_" not in output
    assert issued["id"] in text.stdout

    for bad in ("0", "-3", "many", "99999999"):
        refused = await cli(database, "create-token", "--user", owner["id"], "--expires-in-days", bad)
        assert_clean_failure(refused, "--expires-in-days")


async def test_last_use_is_noted_in_memory_and_written_in_batches(tmp_path: Path) -> None:
    database = tmp_path / "usage.sqlite3"
    owner = await _user(database)
    settings = sqlite_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{database}", token_usage_flush_s=3600)
    async with serve_gateway(settings) as gateway:
        db = gateway.runtime.db
        assert await _status(gateway, owner["token"]) is None
        before = db.statements
        for _ in range(20):
            assert await _status(gateway, owner["token"]) is None
        # One statement a request (the token lookup): no write per use.
        assert db.statements - before == 20
        _, tokens = await _listed(database, owner["partner"])
        assert tokens[0]["lastUsedAt"] is None  # not flushed yet
        assert gateway.runtime.usage.pending == 1
        first_use = datetime.now(UTC)
    # Shutting down flushes what was noted.
    _, tokens = await _listed(database, owner["partner"])
    used = datetime.fromisoformat(tokens[0]["lastUsedAt"])
    assert first_use - timedelta(minutes=1) < used <= datetime.now(UTC)


async def test_last_use_is_flushed_periodically(tmp_path: Path) -> None:
    database = tmp_path / "periodic.sqlite3"
    owner = await _user(database)
    settings = sqlite_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{database}", token_usage_flush_s=0.2)
    async with serve_gateway(settings) as gateway:
        assert await _status(gateway, owner["token"]) is None
        deadline = time.monotonic() + 10
        while True:
            _, tokens = await _listed(database, owner["partner"])
            if tokens[0]["lastUsedAt"] is not None:
                break
            assert time.monotonic() < deadline, "lastUsedAt never written while the gateway ran"


async def test_a_revoked_token_is_refused_at_once_over_http(served: tuple[GatewayServer, Path]) -> None:
    gateway, database = served
    owner = await _user(database)
    second = (await cli(database, "create-token", "--json", "--user", owner["id"])).json()
    assert await _status(gateway, owner["token"]) is None
    assert await _status(gateway, second["token"]) is None

    by_token = await cli(database, "revoke-token", "--json", owner["token"])
    assert by_token.code == 0, by_token.stderr
    assert owner["token"] not in by_token.stdout and by_token.json()["revokedAt"] is not None
    assert await _status(gateway, owner["token"]) == "UNAUTHENTICATED"
    assert await _status(gateway, second["token"]) is None  # only that one

    by_id = await cli(database, "revoke-token", second["id"])
    assert by_id.code == 0 and "revoked" in by_id.stdout, by_id.stderr
    assert await _status(gateway, second["token"]) == "UNAUTHENTICATED"
    again = await cli(database, "revoke-token", second["id"])
    assert again.code == 0 and "already revoked" in again.stdout

    _, tokens = await _listed(database, owner["partner"])
    assert all(t["revokedAt"] is not None for t in tokens)
    unknown_token = "pbg_" + "y" * 43
    assert_clean_failure(await cli(database, "revoke-token", "tok_nope"), "No token 'tok_nope'")
    missing = await cli(database, "revoke-token", unknown_token)
    assert_clean_failure(missing, "No such token")
    assert unknown_token not in missing.stderr


async def test_an_open_socket_is_closed_with_4401_after_revoke_token(served: tuple[GatewayServer, Path]) -> None:
    """memory:// broadcast, revoked by another process: the periodic re-check alone closes it."""
    gateway, database = served
    owner = await _user(database)
    other = (await cli(database, "create-token", "--json", "--user", owner["id"])).json()
    async with gateway.websocket(owner["token"]) as ws, gateway.websocket(other["token"]) as survivor:
        await ws.subscribe(CHANGES)
        await survivor.subscribe(CHANGES)
        revoked = await cli(database, "revoke-token", owner["token"])
        assert revoked.code == 0, revoked.stderr
        revoked_at = time.monotonic()
        code = await _closed_with(ws, revoked_at + CLOSE_DEADLINE_S)
        assert code == 4401
        assert time.monotonic() - revoked_at < CLOSE_DEADLINE_S
        # The other token's socket stays open and still answers.
        await asyncio.wait_for(await survivor.conn.ping(), 5)
    # And the revoked token cannot sign in again.
    with pytest.raises(websockets.ConnectionClosed) as refused:
        async with gateway.websocket(owner["token"]):
            pass
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401


async def test_an_expired_token_is_refused_and_its_socket_closed(served: tuple[GatewayServer, Path]) -> None:
    gateway, database = served
    owner = await _user(database)
    issued = (await cli(database, "create-token", "--json", "--user", owner["id"], "--expires-in-days", "1")).json()
    assert await _status(gateway, issued["token"]) is None

    async with gateway.websocket(issued["token"]) as ws:
        await ws.subscribe(CHANGES)
        # The clock moves on: the token's expiry passes while the socket is open.
        async with gateway.runtime.db.orm(write=True) as session:
            past = datetime.now(UTC) - timedelta(seconds=1)
            await session.exec(update(ApiToken).where(col(ApiToken.id) == issued["id"]).values(expires_at=past))
        expired_at = time.monotonic()
        assert await _status(gateway, issued["token"]) == "UNAUTHENTICATED"
        assert await _closed_with(ws, expired_at + CLOSE_DEADLINE_S) == 4401
    assert await _status(gateway, owner["token"]) is None

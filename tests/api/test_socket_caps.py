"""``MAX_CONNECTIONS_PER_TOKEN`` (API.md, "Limits, round 2") on one gateway:
a token's socket past the cap is closed with 4429, and a socket gives its
place back however it ends (closed, dropped, closed for a message over
256 KB, closed with 4401), so the token can connect again. All over real
WebSockets to a real gateway; tests/scale/test_socket_caps_shared.py shares
the count between instances through Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlmodel import col, update
from websockets.asyncio.client import ClientConnection

from auth.tokens import hash_token
from models import ApiToken
from models.base import utcnow
from models.database import Database
from tests.api.helpers import SHARED_LOOP
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, serve_gateway
from tests.support.sockets import (
    TOO_MANY,
    accepted,
    accepted_soon,
    assert_full,
    close_all,
    closed_with,
    fill,
    open_socket,
    replaced_after,
    send_init,
)

pytestmark = SHARED_LOOP

CAP = 3
MESSAGE_TOO_BIG = 1009
OVERSIZED = 300 * 1024  # over the 256 KB a WebSocket message may have
SUBSCRIPTION = "subscription { orderStatusChanged { cursor } }"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayServer]:
    settings = sqlite_settings(tmp_path_factory.mktemp("caps"), max_connections_per_token=CAP)
    async with serve_gateway(settings) as server:
        yield server


def _url(gateway: GatewayServer) -> str:
    return f"ws://127.0.0.1:{gateway.port}/graphql"


async def _owner(gateway: GatewayServer) -> str:
    return (await gateway.tenant()).tokens["PARTNER_OWNER"]


async def _healthz_answers_quickly(gateway: GatewayServer) -> None:
    started = time.monotonic()
    health = await gateway.http.get("/healthz")
    assert health.status_code == 200 and time.monotonic() - started < 1.0


async def test_a_tokens_socket_past_the_cap_is_closed_with_4429(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    owner, other = tenant.tokens["PARTNER_OWNER"], tenant.tokens["PARTNER_ADMIN"]
    url = _url(gateway)
    held = await fill(url, owner, CAP)
    try:
        await assert_full(url, owner)
        # Another token of the same partner has places of its own.
        await close_all([await accepted(url, other)])
        # The held sockets are untouched.
        await held[0].send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        await asyncio.wait_for(held[0].ping(), 5)
    finally:
        await close_all(held)


async def test_the_older_protocol_is_told_why_before_4429(gateway: GatewayServer) -> None:
    owner = await _owner(gateway)
    url = _url(gateway)
    held = await fill(url, owner, CAP)
    try:
        conn = await open_socket(url, protocol="graphql-ws")
        await send_init(conn, owner)
        told = json.loads(await asyncio.wait_for(conn.recv(), 5))
        assert told["type"] == "connection_error"
        assert told["payload"]["extensions"]["code"] == "RATE_LIMITED"
        assert (await closed_with(conn))[0] == TOO_MANY
    finally:
        await close_all(held)


async def test_a_closed_socket_gives_its_place_back(gateway: GatewayServer) -> None:
    owner = await _owner(gateway)

    async def close(conn: ClientConnection) -> None:
        await conn.close()

    await replaced_after(_url(gateway), owner, CAP, close)
    # And once all are closed, all places are free.
    await close_all([await accepted_soon(_url(gateway), owner) for _ in range(CAP)])


async def test_an_abruptly_dropped_socket_gives_its_place_back(gateway: GatewayServer) -> None:
    async def drop(conn: ClientConnection) -> None:
        # No close frame: the TCP connection just goes away.
        conn.transport.abort()

    await replaced_after(_url(gateway), await _owner(gateway), CAP, drop)


async def test_a_socket_closed_for_an_oversized_subscribe_gives_its_place_back(gateway: GatewayServer) -> None:
    async def oversize(conn: ClientConnection) -> None:
        payload = {"query": SUBSCRIPTION, "variables": {"pad": "x" * OVERSIZED}}
        await conn.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        assert (await closed_with(conn))[0] == MESSAGE_TOO_BIG
        await _healthz_answers_quickly(gateway)

    await replaced_after(_url(gateway), await _owner(gateway), CAP, oversize)


async def test_an_oversized_connection_init_closes_with_1009_and_takes_no_place(gateway: GatewayServer) -> None:
    owner = await _owner(gateway)
    url = _url(gateway)
    held = await fill(url, owner, CAP - 1)
    big = await open_socket(url)
    await send_init(big, owner, pad="x" * OVERSIZED)
    assert (await closed_with(big))[0] == MESSAGE_TOO_BIG
    await _healthz_answers_quickly(gateway)
    # The last place is still free, and then there is none.
    held.append(await accepted(url, owner))
    await assert_full(url, owner)
    await close_all(held)


async def test_sockets_closed_with_4401_give_their_places_back(gateway: GatewayServer) -> None:
    owner = await _owner(gateway)
    url = _url(gateway)
    held = await fill(url, owner, CAP)

    # Revoked (the watcher's periodic check, run now), then valid again.
    await _set_revoked(gateway.runtime.db, owner, revoked=True)
    assert await gateway.runtime.sockets.check() == CAP
    assert [(await closed_with(conn))[0] for conn in held] == [4401] * CAP
    # Had the sockets kept their places, the token would be stuck at its cap
    # once it is valid again.
    await _set_revoked(gateway.runtime.db, owner, revoked=False)
    held = [await accepted_soon(url, owner) for _ in range(CAP)]
    await assert_full(url, owner)
    await close_all(held)


async def _set_revoked(db: Database, token: str, *, revoked: bool) -> None:
    async with db.orm(write=True) as session:
        statement = (
            update(ApiToken)
            .where(col(ApiToken.token_hash) == hash_token(token))
            .values(revoked_at=utcnow() if revoked else None)
        )
        await session.exec(statement)  # type: ignore[call-overload, unused-ignore]


async def test_0_means_no_cap(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, max_connections_per_token=0)) as unlimited:
        await close_all(await fill(_url(unlimited), await _owner(unlimited), CAP + 2))


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_socket_that_never_signs_in_is_closed_with_4408(gateway: GatewayServer, protocol: str) -> None:
    """Neither protocol lets a socket that sends no connection_init stay open
    (Strawberry's handler of the older one would wait forever)."""
    view = gateway.app.subscriptions.app  # type: ignore[attr-defined]  # RequestContext(view)
    waited, view.connection_init_wait_timeout = view.connection_init_wait_timeout, timedelta(seconds=0.5)
    try:
        conn = await open_socket(_url(gateway), protocol)
        assert (await closed_with(conn))[0] == 4408
        signed_in = await open_socket(_url(gateway), protocol)
        await send_init(signed_in, await _owner(gateway))
        assert json.loads(await signed_in.recv())["type"] == "connection_ack"
        await asyncio.sleep(1)  # past the wait: an acknowledged socket stays open
        assert signed_in.state.name == "OPEN"
        await signed_in.close()
    finally:
        view.connection_init_wait_timeout = waited

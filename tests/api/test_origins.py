"""``ALLOWED_ORIGINS``: which browser pages may call the API (CORS) and open
its WebSocket, over real HTTP and real WebSocket handshakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.api.helpers import SHARED_LOOP
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, serve_gateway

pytestmark = SHARED_LOOP

DASHBOARD = "http://localhost:5173"
VIEWER = "{ viewer { id } }"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayServer]:
    settings = sqlite_settings(tmp_path_factory.mktemp("origins"), allowed_origins=(DASHBOARD,))
    async with serve_gateway(settings) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def token(gateway: GatewayServer) -> str:
    return (await gateway.tenant()).tokens["PARTNER_OWNER"]


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def viewer_over_websocket(gateway: GatewayServer, token: str, origin: str | None) -> dict[str, object]:
    """Sign in and run a query over graphql-transport-ws, sending ``origin`` as a browser would."""
    async with websockets.connect(
        f"ws://127.0.0.1:{gateway.port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
        compression=None,
        open_timeout=10,
    ) as conn:
        await conn.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await conn.recv())["type"] == "connection_ack"
        await conn.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": VIEWER}}))
        message: dict[str, object] = json.loads(await conn.recv())
        return message


# -- CORS ----------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_allows_the_token_header(gateway: GatewayServer) -> None:
    response = await gateway.http.options("/graphql", headers=preflight(DASHBOARD))
    assert 200 <= response.status_code < 300, response.text
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    allowed_headers = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers  # tokens, never cookies


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://localhost:5174", "https://localhost:5173", "http://localhost:5173.evil.example"],
)
async def test_preflight_from_any_other_origin_gets_no_allow_origin(gateway: GatewayServer, origin: str) -> None:
    response = await gateway.http.options("/graphql", headers=preflight(origin))
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code < 500


async def test_requests_from_an_allowed_origin_are_readable_by_its_page(gateway: GatewayServer, token: str) -> None:
    headers = {"Origin": DASHBOARD, "Authorization": f"Bearer {token}"}
    response = await gateway.http.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["id"]
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    # A dashboard reads Retry-After when rate limited.
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


async def test_refusals_from_inner_layers_are_readable_too(gateway: GatewayServer) -> None:
    """A body over the limit is refused before GraphQL; the page must still
    be able to read why, so CORS wraps every layer."""
    big = "x" * (gateway.settings.max_body_bytes + 1)
    response = await gateway.http.post(
        "/graphql", content=big, headers={"Origin": DASHBOARD, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == DASHBOARD


async def test_responses_to_other_origins_carry_no_allow_origin(gateway: GatewayServer, token: str) -> None:
    headers = {"Origin": "http://evil.example", "Authorization": f"Bearer {token}"}
    response = await gateway.http.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert "access-control-allow-origin" not in response.headers


async def test_without_allowed_origins_other_pages_are_refused(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path)) as closed:
        response = await closed.http.options("/graphql", headers=preflight(DASHBOARD))
        owner = (await closed.tenant()).tokens["PARTNER_OWNER"]
        with pytest.raises(InvalidStatus) as refused:
            await viewer_over_websocket(closed, owner, DASHBOARD)
        # Scripts (no Origin) and the gateway's own pages still get in.
        assert (await viewer_over_websocket(closed, owner, None))["type"] == "next"
        assert (await viewer_over_websocket(closed, owner, f"http://127.0.0.1:{closed.port}"))["type"] == "next"
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code < 500
    assert refused.value.response.status_code == 403


# -- WebSocket -----------------------------------------------------------------


async def test_websocket_from_an_allowed_origin_is_accepted(gateway: GatewayServer, token: str) -> None:
    message = await viewer_over_websocket(gateway, token, DASHBOARD)
    assert message["type"] == "next", message


async def test_websocket_from_the_gateways_own_pages_is_accepted(gateway: GatewayServer, token: str) -> None:
    """GraphiQL, served by the gateway, opens its socket from the same origin."""
    message = await viewer_over_websocket(gateway, token, f"http://127.0.0.1:{gateway.port}")
    assert message["type"] == "next", message


async def test_websocket_without_origin_is_judged_by_its_token(gateway: GatewayServer, token: str) -> None:
    message = await viewer_over_websocket(gateway, token, None)
    assert message["type"] == "next", message
    with pytest.raises(ConnectionClosed) as closed:
        await viewer_over_websocket(gateway, "pbg_not-a-token", None)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:5174", "http://127.0.0.1:1", "null"])
async def test_websocket_from_another_origin_is_refused_before_accepting(
    gateway: GatewayServer, token: str, origin: str
) -> None:
    # Even with a valid token: a page elsewhere must not act with a user's token.
    with pytest.raises(InvalidStatus) as refused:
        await viewer_over_websocket(gateway, token, origin)
    assert refused.value.response.status_code == 403

"""A real gateway for tests: uvicorn serving the app on a free port, on a real
SQLite file (or any DATABASE_URL), reached over real HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
import websockets
from graphql import GraphQLSchema
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from billing.onboarding import DemoTenant, seed_demo
from gateway.app import GatewayApp, create_app
from gateway.runtime import Runtime
from settings import Settings

__all__ = ["GatewayServer", "GraphQLClient", "GraphQLWebSocket", "free_port", "serve_gateway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient
    token: str | None = None

    async def post(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", None) or {})
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers, **kwargs
        )

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body (data and errors), asserting HTTP 200."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """``data``, asserting there were no errors."""
        body = await self.execute(query, variables)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error_code(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """The code of the first top-level error, asserting there is one."""
        body = await self.execute(query, variables)
        assert body.get("errors"), body
        code: str = body["errors"][0]["extensions"]["code"]
        return code


@dataclass
class GraphQLWebSocket:
    """A graphql-transport-ws client speaking over a real socket."""

    conn: ClientConnection
    _next_id: int = 0

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        payload = {"query": query, "variables": variables or {}}
        await self.conn.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
            if message["type"] not in {"ping", "pong", "ka"}:
                return message

    async def next_data(self, op_id: str, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.receive(timeout)
        assert message.get("id") == op_id and message["type"] in {"next", "data"}, message
        data: dict[str, Any] = message["payload"]["data"]
        return data


@dataclass
class GatewayServer:
    settings: Settings
    port: int
    runtime: Runtime
    http: httpx.AsyncClient
    app: GatewayApp
    _tenants: list[DemoTenant] = field(default_factory=list)

    @property
    def app_schema(self) -> GraphQLSchema:
        """The GraphQL schema the running app executes."""
        return self.app.graphql.schema._schema

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None) -> GraphQLClient:
        return GraphQLClient(self.http, token)

    async def tenant(self) -> DemoTenant:
        """A fresh demo partner (two customers, one token per role)."""
        tenant = await seed_demo(self.runtime.db)
        self._tenants.append(tenant)
        return tenant

    @contextlib.asynccontextmanager
    async def websocket(
        self, token: str | None, *, protocol: str = "graphql-transport-ws", init: bool = True
    ) -> AsyncIterator[GraphQLWebSocket]:
        async with websockets.connect(
            f"ws://127.0.0.1:{self.port}/graphql",
            subprotocols=[Subprotocol(protocol)],
            compression=None,
        ) as conn:
            ws = GraphQLWebSocket(conn)
            if init:
                payload = {"Authorization": f"Bearer {token}"} if token else {}
                await conn.send(json.dumps({"type": "connection_init", "payload": payload}))
                ack = await ws.receive()
                assert ack["type"] == "connection_ack", ack
            yield ws


@contextlib.asynccontextmanager
async def serve_gateway(settings: Settings) -> AsyncIterator[GatewayServer]:
    """Run the gateway in this event loop until the block ends."""
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="websockets-sansio",  # as the Procfile
        ws_per_message_deflate=False,
        ws_max_size=settings.max_body_bytes,  # as the Procfile and `partner-billing serve`
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError("gateway did not start")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield GatewayServer(settings=settings, port=port, runtime=app.state.runtime, http=http, app=app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)

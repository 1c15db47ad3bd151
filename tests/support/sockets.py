"""Raw graphql-transport-ws sockets for tests of how sockets are refused and
closed: each signs in by itself and reports the code it was closed with."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

__all__ = [
    "TOO_MANY",
    "accepted",
    "accepted_soon",
    "assert_full",
    "close_all",
    "closed_with",
    "fill",
    "open_socket",
    "replaced_after",
    "send_init",
    "sign_in",
]

TOO_MANY = 4429
_FULL = (TOO_MANY, "Too many connections for this token")
RELEASE_WITHIN_S = 5.0  # for the server to notice a socket that ended


async def open_socket(url: str, protocol: str = "graphql-transport-ws") -> ClientConnection:
    return await websockets.connect(
        url,
        subprotocols=[protocol],  # type: ignore[list-item]
        compression=None,
        open_timeout=10,
        close_timeout=2,
        max_size=None,
    )


async def send_init(conn: ClientConnection, token: str, **extra: object) -> None:
    payload = {"Authorization": f"Bearer {token}", **extra}
    await conn.send(json.dumps({"type": "connection_init", "payload": payload}))


async def closed_with(conn: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    """The code and reason the server closed ``conn`` with, reading until it does."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(conn.recv(), timeout)
    assert closed.value.rcvd is not None, "the server sent no close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def sign_in(url: str, token: str) -> ClientConnection | int:
    """An acknowledged socket, or the code it was closed with instead."""
    conn = await open_socket(url)
    await send_init(conn, token)
    try:
        reply = json.loads(await asyncio.wait_for(conn.recv(), 5))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code
    assert reply["type"] == "connection_ack", reply
    return conn


async def accepted(url: str, token: str) -> ClientConnection:
    conn = await sign_in(url, token)
    assert not isinstance(conn, int), f"closed with {conn}"
    return conn


async def accepted_soon(url: str, token: str, within: float = RELEASE_WITHIN_S) -> ClientConnection:
    """Accepted once the server has noticed a socket that ended (4429 until then)."""
    deadline = time.monotonic() + within
    while True:
        conn = await sign_in(url, token)
        if not isinstance(conn, int):
            return conn
        assert conn == TOO_MANY and time.monotonic() < deadline, f"still refused ({conn}) after {within}s"
        await asyncio.sleep(0.05)


async def assert_full(url: str, token: str) -> None:
    """The token's next socket is refused: 4429, with the reason."""
    conn = await open_socket(url)
    await send_init(conn, token)
    assert await closed_with(conn) == _FULL


async def fill(url: str, token: str, count: int) -> list[ClientConnection]:
    return [await accepted(url, token) for _ in range(count)]


async def close_all(conns: list[ClientConnection]) -> None:
    await asyncio.gather(*(conn.close() for conn in conns))


async def replaced_after(url: str, token: str, cap: int, end: Callable[[ClientConnection], Awaitable[None]]) -> None:
    """With the token at its cap, ``end`` one socket: one new socket is then
    accepted, and not two."""
    held = await fill(url, token, cap)
    await end(held.pop())
    held.append(await accepted_soon(url, token))
    await assert_full(url, token)
    await close_all(held)

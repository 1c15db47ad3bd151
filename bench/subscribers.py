"""graphql-transport-ws subscribers, many per client process, cheap per message.

Each client process (:func:`client_main`, started by ``fanout.py``) runs its
own asyncio loop and holds its share of the sockets. A subscriber is an
``asyncio.Protocol`` driving websockets' sans-I/O ``ClientProtocol`` (the
handshake, framing, masking and answering the server's pings are the
library's); per message it does a substring test and parses JSON only for a
``SUCCEEDED`` event, about 3 µs of client CPU a frame. Arrival times are
``time.monotonic()``, which is system-wide on Linux (CLOCK_MONOTONIC), so the
parent compares them with the moment it sent the purchase.

The parent drives a process through a pipe, one command at a time:
``open`` (more subscribers), ``cpu``, ``wait`` (for an order's SUCCEEDED at
every live subscriber), ``close`` (all), ``exit``. Each reply is a dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

__all__ = ["client_main"]

_PROTOCOL = [Subprotocol("graphql-transport-ws")]
_ERRORS_KEPT = 20


@dataclass
class Pool:
    """The subscribers of this process and what they received."""

    init: bytes
    subscribe: bytes
    subscribers: list[Subscriber] = field(default_factory=list)
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    complete: dict[str, asyncio.Event] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    live: int = 0  # subscribers acknowledged and not lost or closed

    def arrived(self, order_id: str, at: float) -> None:
        times = self.arrivals.setdefault(order_id, [])
        times.append(at)
        if len(times) >= self.live:
            self.complete.setdefault(order_id, asyncio.Event()).set()

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < _ERRORS_KEPT:
            self.errors.append(text[:300])


class Subscriber(asyncio.Protocol):
    def __init__(self, pool: Pool, uri: str) -> None:
        self.pool = pool
        self.ws = ClientProtocol(parse_uri(uri), subprotocols=_PROTOCOL)
        self.transport: asyncio.Transport | None = None
        # None once acknowledged, else why not (a result, never an exception: nobody may be waiting).
        self.acked: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._live = False
        self.closing = False
        self.seen: set[str] = set()
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if event.status_code != 101 or self.ws.handshake_exc is not None:
                    self._fail(f"handshake refused: {event.status_code} {self.ws.handshake_exc}")
                else:
                    self.ws.send_text(self.pool.init)
            elif isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                    self.fragments.append(bytes(event.data))
                    if event.fin:
                        message, self.fragments = b"".join(self.fragments), []
                        self._message(message, now)
                elif event.opcode is Opcode.CLOSE and not self.closing:
                    self._fail(f"closed by the server: {self.ws.close_code} {self.ws.close_reason}")
        self._flush()

    def _message(self, data: bytes, now: float) -> None:
        if b'"next"' in data:
            if b'"SUCCEEDED"' in data:
                event = json.loads(data)["payload"]["data"]["orderStatusChanged"]
                order_id = event["order"]["id"]
                if event["status"] == "SUCCEEDED" and order_id not in self.seen:
                    self.seen.add(order_id)
                    self.pool.arrived(order_id, now)
            return
        message = json.loads(data)
        kind = message.get("type")
        if kind == "connection_ack":
            self.ws.send_text(self.pool.subscribe)
            self._set_live(True)
            if not self.acked.done():
                self.acked.set_result(None)
        elif kind == "ping":
            self.ws.send_text(b'{"type":"pong"}')
        elif kind != "pong":
            self._fail(f"unexpected message: {data[:200]!r}")

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def _set_live(self, live: bool) -> None:
        if live != self._live:
            self._live = live
            self.pool.live += 1 if live else -1

    def _fail(self, text: str) -> None:
        self.pool.error(text)
        self._set_live(False)
        if not self.acked.done():
            self.acked.set_result(text)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing and (self._live or not self.acked.done()):
            self._fail(f"connection lost: {exc}")

    def close(self) -> None:
        self.closing = True
        self._set_live(False)
        if self.transport is not None and not self.transport.is_closing():
            self.ws.send_close()
            self._flush()
            self.transport.close()


async def _open(pool: Pool, host: str, port: int, uri: str, count: int, at_once: int, timeout_s: float) -> int:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(at_once)

    async def one() -> bool:
        async with gate:
            try:
                _, subscriber = await asyncio.wait_for(
                    loop.create_connection(lambda: Subscriber(pool, uri), host, port), timeout_s
                )
                pool.subscribers.append(subscriber)
                refused = await asyncio.wait_for(asyncio.shield(subscriber.acked), timeout_s)
                return refused is None  # a refusal was counted by the subscriber's _fail
            except Exception as exc:
                pool.error(f"open: {exc!r}")
                return False

    return sum(await asyncio.gather(*(one() for _ in range(count))))


async def _wait(pool: Pool, order_id: str, timeout_s: float) -> list[float]:
    done = pool.complete.setdefault(order_id, asyncio.Event())
    if len(pool.arrivals.get(order_id, ())) >= pool.live:
        done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout_s)
    return list(pool.arrivals.get(order_id, ()))


async def _serve(conn: Connection, init: bytes, subscribe: bytes) -> None:
    loop = asyncio.get_running_loop()
    pool = Pool(init, subscribe)
    readable = asyncio.Event()
    loop.add_reader(conn.fileno(), readable.set)
    while True:
        await readable.wait()
        readable.clear()
        while conn.poll():
            command: dict[str, Any] = conn.recv()
            verb = command["verb"]
            reply: dict[str, Any] = {}
            if verb == "open":
                started = time.monotonic()
                opened = await _open(
                    pool,
                    command["host"],
                    command["port"],
                    command["uri"],
                    command["count"],
                    command["at_once"],
                    command["timeout_s"],
                )
                reply = {"opened": opened, "seconds": time.monotonic() - started}
            elif verb == "wait":
                reply = {"arrivals": await _wait(pool, command["order_id"], command["timeout_s"])}
            elif verb == "close":
                for subscriber in pool.subscribers:
                    subscriber.close()
                reply = {"closed": len(pool.subscribers)}
                pool.subscribers.clear()
            elif verb == "exit":
                loop.remove_reader(conn.fileno())
                conn.send({"cpu": time.process_time()})
                return
            reply.update(
                cpu=time.process_time(),
                live=pool.live,
                errors=pool.errors[:],
                error_count=pool.error_count,
            )
            pool.errors.clear()
            pool.error_count = 0
            conn.send(reply)


def client_main(conn: Connection, init: bytes, subscribe: bytes) -> None:
    """A client process: serve the parent's commands until ``exit``."""
    asyncio.run(_serve(conn, init, subscribe))

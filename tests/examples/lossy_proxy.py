"""A TCP proxy in front of the gateway that loses answers on purpose.

It forwards HTTP requests one by one, reading each answer whole before passing
it on, so it can lose one *after the gateway acted*: the first request whose
body contains ``marker`` reaches the gateway, its answer is read, and the
client's connection is cut without a byte of it. WebSocket connections are
piped through; with ``ws_cut_marker``, the first one to carry it from the
gateway is cut right after passing it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

__all__ = ["LossyProxy", "lossy_proxy"]

_CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)


class LossyProxy:
    def __init__(self, upstream_port: int, marker: bytes, ws_cut_marker: bytes | None = None) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        self.ws_cut_marker = ws_cut_marker
        self.port = 0
        self.dropped = 0  # answers lost so far (at most one)
        self.cut = 0  # WebSockets cut so far (at most one)
        self.forwarded = 0  # answers passed on
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            await self._serve(client_reader, client_writer, upstream_reader, upstream_writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # either side went away: so does this connection
        finally:
            self._tasks.discard(task)
            for writer in (client_writer, upstream_writer):
                writer.transport.abort()

    async def _serve(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
    ) -> None:
        while True:
            head = await client_reader.readuntil(b"\r\n\r\n")
            if b"\r\nupgrade: websocket" in head.lower():
                upstream_writer.write(head)
                await asyncio.gather(
                    self._pipe(client_reader, upstream_writer),
                    self._pipe(upstream_reader, client_writer, self.ws_cut_marker),
                )
                return
            body = await client_reader.readexactly(_content_length(head))
            upstream_writer.write(head + body)
            await upstream_writer.drain()
            answer_head = await upstream_reader.readuntil(b"\r\n\r\n")
            answer = answer_head + await upstream_reader.readexactly(_content_length(answer_head))
            if self.dropped == 0 and self.marker in body:
                self.dropped += 1
                return  # the gateway has answered; the client never hears it
            client_writer.write(answer)
            await client_writer.drain()
            self.forwarded += 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut_marker: bytes | None = None
    ) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
            if cut_marker is not None and cut_marker in chunk and self.cut == 0:
                self.cut += 1
                break
        writer.transport.abort()


def _content_length(head: bytes) -> int:
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        # The gateway sends Content-Length on every answer; anything else would
        # need chunked decoding, which this proxy does not do.
        assert b"transfer-encoding" not in head.lower(), head
        return 0
    return int(match.group(1))


@contextlib.asynccontextmanager
async def lossy_proxy(
    upstream_port: int, marker: bytes, ws_cut_marker: bytes | None = None
) -> AsyncIterator[LossyProxy]:
    proxy = LossyProxy(upstream_port, marker, ws_cut_marker)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        await proxy.close()
        await server.wait_closed()

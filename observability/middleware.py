"""``RequestContext``: the outermost ASGI middleware.

For each HTTP request and WebSocket connection it binds a request id (the
client's ``X-Request-ID`` when sane, else a new one) for the log lines written
while handling it, and adds ``X-Request-ID`` to every HTTP response, refusals
by inner layers (CORS, 413, 429) included, and to the WebSocket handshake's. An exception nobody handled becomes
a JSON ``INTERNAL`` error carrying the id as ``extensions.requestId``, logged
once with its traceback and the same id.

Pure ASGI (no ``BaseHTTPMiddleware``): per request it costs a header scan,
a context-variable set and reset, and one wrapped ``send``.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.requests import (
    REQUEST_ID_HEADER,
    bind_request_id,
    new_request_id,
    reset_request_id,
    sane_request_id,
)

__all__ = ["RequestContext", "internal_error_body", "request_id_of"]

log = logging.getLogger("gateway.errors")


def internal_error_body(request_id: str) -> bytes:
    error = {"message": "Internal error.", "extensions": {"code": "INTERNAL", "requestId": request_id}}
    return json.dumps({"data": None, "errors": [error]}).encode()


def request_id_of(scope: Scope) -> str:
    """The request's id: the client's ``X-Request-ID`` when sane, else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return sane_request_id(value) or new_request_id()
    return new_request_id()


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind != "websocket":  # lifespan
                await self.app(scope, receive, send)
                return
            await self._websocket(scope, receive, send)
            return

        request_id = request_id_of(scope)
        token = bind_request_id(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # A copy: a response object may be shared between requests.
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for an answer: the server closes the connection
            body = internal_error_body(request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        header,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            reset_request_id(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The connection's id, in the handshake's answer too; each operation
        # on it gets an id of its own (observability.operations).
        request_id = request_id_of(scope)
        token = bind_request_id(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_request_id(token)

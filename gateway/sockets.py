"""WebSockets signed in with a token are closed (4401) once the token is
revoked or expires, on every instance.

Each process runs one :class:`SocketWatcher`. It knows the token of every
open, acknowledged socket of this process, and every few seconds checks them
all with one statement; a socket whose token is no longer valid is closed
with 4401 (``graphql-ws`` treats 4401 as final and stops reconnecting). That
check alone bounds how long a revoked or expired token keeps a socket, also
when nothing else can tell this process (``BROADCAST_URL=memory://`` and a
revocation made by the command line). With a shared broadcast,
``partner-billing revoke-token`` also rings :data:`TOKENS_CHANNEL` with the
token's id and every instance closes its sockets at once.

The socket handlers here are Strawberry's, with four changes: a missing or
bad token on ``connection_init`` closes with 4401 (Strawberry closes with
4403, which ``graphql-ws`` clients retry for about 40 s), a token already
holding ``MAX_CONNECTIONS_PER_TOKEN`` sockets closes the new one with 4429, a
socket registers with the watcher once acknowledged (and gives its slot back
when it ends, however it ends), and "Subscription limit reached" carries an
``extensions.code`` like every other error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from broadcaster import Broadcast
from sqlalchemy import bindparam, or_, select
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, Message
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage as LegacyInitMessage
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage

from auth.usage import TokenUsage
from events.backends import RECONNECTED, make_broadcast_backend
from gateway.live import live_document, run_live
from gateway.socket_slots import SocketSlots
from models.base import utcnow
from models.database import Database, DatabaseUnavailable, Query, any_of
from models.tables import api_tokens
from schema.context import Context

if TYPE_CHECKING:
    from gateway.view import GraphQLView

__all__ = [
    "TOKENS_CHANNEL",
    "TOO_MANY_CONNECTIONS",
    "UNAUTHORIZED",
    "LegacyWSHandler",
    "SignInRefused",
    "SocketAdapter",
    "SocketWatcher",
    "TokenRefused",
    "TooManyConnections",
    "TransportWSHandler",
    "announce_revoked",
    "close_reason",
    "take_socket_slot",
]

log = logging.getLogger(__name__)

TOKENS_CHANNEL = "pbg.tokens-revoked"
UNAUTHORIZED = 4401
TOO_MANY_CONNECTIONS = 4429
TRY_AGAIN_LATER = 1013  # RFC 6455: clients reconnect later
_SUBSCRIPTION_LIMIT = "Subscription limit reached"

_VALID = Query(
    select(api_tokens.c.id).where(
        any_of(api_tokens.c.id, "ids"),
        api_tokens.c.revoked_at.is_(None),
        or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > bindparam("now")),
    )
)


class SignInRefused(Exception):
    """``connection_init`` is refused: close with ``close_code``."""

    close_code = UNAUTHORIZED
    close_reason = "Unauthorized"
    error_code = "UNAUTHENTICATED"


class TokenRefused(SignInRefused):
    """``connection_init`` carried no valid token: close with 4401."""


class TooManyConnections(SignInRefused):
    """The token holds ``MAX_CONNECTIONS_PER_TOKEN`` sockets already: 4429."""

    close_code = TOO_MANY_CONNECTIONS
    close_reason = "Too many connections for this token"
    error_code = "RATE_LIMITED"


class _Watched:
    """What the watcher needs of a socket handler."""

    async def close_unauthorized(self) -> None:
        raise NotImplementedError


class SocketWatcher:
    def __init__(self, db: Database, broadcast: Broadcast, usage: TokenUsage, *, interval_s: float) -> None:
        self._db = db
        self._broadcast = broadcast
        self._usage = usage
        self._interval = interval_s
        self._sockets: dict[_Watched, str] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def watched(self) -> int:
        return len(self._sockets)

    def watch(self, token_id: str, socket: _Watched) -> None:
        self._sockets[socket] = token_id

    def unwatch(self, socket: _Watched) -> None:
        self._sockets.pop(socket, None)

    async def check(self) -> int:
        """Close the sockets whose token is revoked or expired (one statement
        for all of them); returns how many were closed."""
        token_ids = sorted(set(self._sockets.values()))
        if not token_ids:
            return 0
        async with self._db.connection() as conn:
            valid = {row[0] for row in await conn.all(_VALID, ids=token_ids, now=utcnow())}
        now = utcnow()
        for token_id in valid:
            # An open socket is a token in use.
            self._usage.seen(token_id, now)
        return await self._close(set(token_ids) - valid)

    async def revoked(self, token_id: str) -> int:
        return await self._close({token_id})

    async def _close(self, token_ids: set[str]) -> int:
        doomed = [socket for socket, token_id in self._sockets.items() if token_id in token_ids]
        for socket in doomed:
            self.unwatch(socket)
        results = await asyncio.gather(*(socket.close_unauthorized() for socket in doomed), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("closing a socket whose token was revoked failed: %r", result)
        return len(doomed)

    async def run(self) -> None:
        """Re-check every interval and close on every ring, until cancelled."""
        listener = asyncio.create_task(self._listen(), name="socket-watcher-listen")
        try:
            while True:
                await asyncio.sleep(self._interval)
                try:
                    await self.check()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The database may be down: the next check tries again.
                    log.warning("re-checking the tokens of open sockets failed: %r", exc)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        while True:
            try:
                async with self._broadcast.subscribe(TOKENS_CHANNEL) as rings:
                    async for ring in rings:  # type: ignore[union-attr]
                        message = getattr(ring, "message", "")
                        if message == RECONNECTED:
                            # Rings may have been missed while it was down.
                            await self.check()
                        elif isinstance(message, str) and message:
                            await self.revoked(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("listening for revoked tokens failed; retrying")
                await asyncio.sleep(1)


async def announce_revoked(broadcast_url: str, token_id: str) -> bool:
    """Ring every instance sharing ``broadcast_url`` to close the token's
    sockets now; False when there is nothing to ring (``memory://``) or the
    broadcast is unreachable (their periodic check closes them anyway)."""
    if broadcast_url.startswith("memory"):
        return False
    backend = make_broadcast_backend(broadcast_url)
    try:
        await backend.connect()
        await backend.publish(TOKENS_CHANNEL, token_id)
    except Exception as exc:
        log.warning("could not announce the revocation (%r); instances notice within their check interval", exc)
        return False
    finally:
        with contextlib.suppress(Exception):
            await backend.disconnect()
    return True


def _watcher_of(context: Context) -> SocketWatcher | None:
    runtime = getattr(context.request.app.state, "runtime", None)
    watcher = getattr(runtime, "sockets", None)
    return watcher if isinstance(watcher, SocketWatcher) else None


def _slots_of(context: Context) -> SocketSlots | None:
    runtime = getattr(context.request.app.state, "runtime", None)
    slots: SocketSlots | None = getattr(runtime, "socket_slots", None)
    return slots


async def take_socket_slot(context: Context, token_id: str) -> None:
    """Take one of the token's places for this socket, or raise
    :class:`TooManyConnections`. Called while signing in, before the ack."""
    slots = _slots_of(context)
    if slots is None or context.socket_slot is not None:
        return
    slot = secrets.token_hex(12)
    if not await slots.take(token_id, slot):
        raise TooManyConnections(f"Too many connections for this token (at most {slots.limit}).")
    context.socket_slot = slot


async def _give_back_slot(context: Context) -> None:
    slot, context.socket_slot = context.socket_slot, None
    slots = _slots_of(context)
    if slot is not None and slots is not None:
        try:
            await slots.give_back(slot)
        except Exception as exc:
            # Never let it mask how the socket ended; a shared slot ages out.
            log.warning("giving back a socket's slot failed: %r", exc)


_LIMIT_EXTENSIONS: Mapping[str, Any] = {"code": "RATE_LIMITED", "limit": "subscriptionsPerConnection"}
_BAD_INIT_PAYLOAD: Mapping[str, Any] = {
    "message": "The connection_init payload must be an object.",
    "extensions": {"code": "BAD_USER_INPUT"},
}


def _with_code(error: object) -> object:
    if isinstance(error, dict) and error.get("message") == _SUBSCRIPTION_LIMIT and "extensions" not in error:
        return {**error, "extensions": dict(_LIMIT_EXTENSIONS)}
    return error


# RFC 6455, 5.5: a close frame's payload is at most 125 bytes, 2 of them the code.
_MAX_CLOSE_REASON_BYTES = 123


def close_reason(reason: str) -> str:
    """``reason`` as a close frame can carry it: UTF-8 (a lone surrogate
    becomes "?") of at most 123 bytes. Strawberry's reasons may quote the
    client's message (an unknown type, a duplicate id), of any length."""
    encoded = reason.encode("utf-8", "replace")
    if len(encoded) <= _MAX_CLOSE_REASON_BYTES:
        return encoded.decode()
    return encoded[: _MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


class SocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's WebSocket adapter, closing with reasons that fit (a
    longer one made the close itself fail, and the socket dropped with no
    close frame instead of the protocol's code), and quietly when the socket
    is gone already."""

    async def close(self, code: int, reason: str) -> None:
        try:
            await super().close(code, close_reason(reason))
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            # The client left while its message was handled (a refused token
            # is checked against the database first), or uvicorn closed the
            # socket itself: nothing is left to close. Raised, it was logged
            # as "Exception in ASGI application".
            log.debug("not closed with %s, the socket is closed: %r", code, exc)


_OPTIONAL_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "variables": (dict, type(None)),
    "operationName": (str, type(None)),
    "extensions": (dict, type(None)),
}


def _message_problem(message: object, *, start: str, stop: str) -> str | None:
    """Why a message cannot be handled (a protocol's ``start`` and ``stop``
    messages as graphql-transport-ws's PROTOCOL.md defines them: an id
    string, a payload object with a query string), or None. The reason never
    quotes the message."""
    if not isinstance(message, dict):
        return "Message must be a JSON object"
    if "type" not in message:
        return "Message must have a type"
    kind = message["type"]
    if kind not in (start, stop):
        return None  # Strawberry checks the others (type, init payload) itself
    if not isinstance(message.get("id"), str):
        return "Message id must be a string"
    if kind == stop:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return f"{start} payload must be an object with a query string"
    for name, types in _OPTIONAL_FIELDS.items():
        if not isinstance(payload.get(name), types):
            return f"{start} payload's {name} has the wrong type"
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None], _Watched):
    """graphql-transport-ws (``graphql-ws`` clients)."""

    async def handle(self) -> None:
        await _handling(self, super().handle())

    async def handle_message(self, message: Message) -> None:
        # Strawberry reads a message's fields by key and catches KeyError
        # only: a message that is no object, an id that is no string (a list
        # cannot even be looked up) or a payload of the wrong shape raised
        # out of the socket's loop and dropped it without a close frame.
        # The protocol's answer to an invalid message is 4400.
        problem = _message_problem(message, start="subscribe", stop="complete")
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await _signing_in(self, super().handle_connection_init(message))
        timer = self.connection_init_timeout_task
        if self.connection_acknowledged and timer is not None and not timer.done():
            # Strawberry lets it sleep out its minute; thousands of idle
            # subscribers would each keep a task and a timer for nothing.
            timer.cancel()

    async def send_message(self, message: Message) -> None:
        payload = message.get("payload")
        if message.get("type") == "error" and isinstance(payload, list):
            message = cast(Message, {**message, "payload": [_with_code(e) for e in payload]})
        await _unless_closed(super().send_message(message))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        view = cast("GraphQLView", self.view)
        document = None
        if view.live_delivery:
            document = live_document(view.schema.documents, operation.query, operation.operation_name)
        if document is None:
            await super().run_operation(operation)
            return
        # A frame's text around the shared payload: {"id":…,"type":"next","payload":…}.
        prefix = '{"id":' + view.encode_json(operation.id) + ',"type":"next","payload":'
        websocket = cast(SocketAdapter, self.websocket).ws

        async def send_payload(payload: str) -> None:
            await _unless_closed(websocket.send_text(prefix + payload + "}"))

        try:
            await run_live(
                view.schema._schema,
                self.context,
                document,
                variables=operation.variables,
                operation_name=operation.operation_name,
                send_errors=operation.send_initial_errors,
                send_payload=send_payload,
                encode=view.encode_json,
            )
        except Exception as error:
            # As Strawberry's operation loop ends one that failed.
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def close_unauthorized(self) -> None:
        # Stop the operations first, so none sends after the close.
        await self.shutdown()
        with contextlib.suppress(Exception):
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
        # Now, not once the client has answered the close.
        await _give_back_slot(self.context)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None], _Watched):
    """graphql-ws, the older subscriptions-transport-ws protocol."""

    async def handle(self) -> None:
        # Strawberry's handler of this protocol waits for connection_init
        # forever: a socket that never signs in would hold its place as long as
        # it answers pings. Close it as graphql-transport-ws does (4408).
        wait = self.view.connection_init_wait_timeout.total_seconds()
        timer = asyncio.get_running_loop().call_later(wait, self._init_timed_out)
        try:
            await _handling(self, super().handle())
        finally:
            timer.cancel()

    def _init_timed_out(self) -> None:
        if not self.connection_acknowledged:
            closing = asyncio.ensure_future(self.websocket.close(code=4408, reason="Connection initialisation timeout"))
            closing.add_done_callback(_ignore_outcome)

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        async def tell(refused: SignInRefused) -> None:
            # This protocol's clients read why from a connection_error first.
            error = {"message": str(refused), "extensions": {"code": refused.error_code}}
            await self.send_message(cast(OperationMessage, {"type": "connection_error", "payload": error}))

        await _signing_in(self, super().handle_connection_init(message), tell=tell)

    async def handle_message(self, message: OperationMessage) -> None:
        # As for graphql-transport-ws (above): Strawberry's handler of this
        # protocol catches nothing, so a message that is no object, has no
        # type or an id that is no string dropped the socket without a close
        # frame. This handler ignores what it cannot read (non-JSON text,
        # unknown types), and so such messages too.
        problem = _message_problem(message, start="start", stop="stop")
        if problem is not None:
            log.debug("graphql-ws message ignored: %s", problem)
            return
        await super().handle_message(message)

    async def send_message(self, message: OperationMessage) -> None:
        if message.get("type") == "error":
            message = cast(OperationMessage, {**message, "payload": _with_code(message.get("payload"))})
        elif message.get("type") == "connection_error" and message.get("payload") is None:
            # Strawberry's refusal of an init payload that is no object said
            # nothing; every error this gateway sends has a message and code.
            message = cast(OperationMessage, {**message, "payload": dict(_BAD_INIT_PAYLOAD)})
        await _unless_closed(super().send_message(message))

    async def close_unauthorized(self) -> None:
        if self.keep_alive_task:
            self.keep_alive_task.cancel()
        await self.cleanup()
        with contextlib.suppress(Exception):
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
        await _give_back_slot(self.context)


_Handler = TransportWSHandler | LegacyWSHandler


def _ignore_outcome(task: asyncio.Future[None]) -> None:
    # A socket already gone cannot be closed again; nothing to report.
    if not task.cancelled():
        task.exception()


async def _unless_closed(sending: Awaitable[None]) -> None:
    """Send, unless the socket is closed already: an operation may still be
    answering when the client leaves or uvicorn closes the socket itself
    (1009, a message over --ws-max-size), and sending then raises
    (RuntimeError from uvicorn or Starlette, OSError, WebSocketDisconnected)
    into Strawberry's operation task, which logs it as an error. Nobody is
    there to receive the message; the handler's loop ends and cleans up."""
    try:
        await sending
    except (RuntimeError, OSError, WebSocketDisconnected, WebSocketDisconnect) as exc:
        # WebSocketDisconnect: Starlette's, from a live frame sent by gateway.live.
        log.debug("not sent, the socket is closed: %r", exc)


async def _handling(handler: _Handler, handling: Awaitable[None]) -> None:
    """Run the base handler's loop; after it, however it ended (closed by
    either side, dropped, too large a message, an error), the socket is no
    longer watched and its slot is free."""
    try:
        await handling
    finally:
        watcher = _watcher_of(handler.context)
        if watcher is not None:
            watcher.unwatch(handler)
        await _give_back_slot(handler.context)


async def _signing_in(
    handler: _Handler,
    initialising: Awaitable[None],
    *,
    tell: Callable[[SignInRefused], Awaitable[None]] | None = None,
) -> None:
    """Run the base handler's connection_init: a refused token closes with
    4401, one socket too many for the token with 4429, a database that cannot
    say with 1013 (come back later); an acknowledged socket is watched from
    then on."""
    try:
        await initialising
    except SignInRefused as refused:
        if tell is not None:
            with contextlib.suppress(Exception):
                await tell(refused)
        await handler.websocket.close(code=refused.close_code, reason=refused.close_reason)
        return
    except DatabaseUnavailable:
        await handler.websocket.close(code=TRY_AGAIN_LATER, reason="Database unavailable; retry shortly")
        return
    _watch(handler, handler.context, acknowledged=handler.connection_acknowledged)


def _watch(socket: _Watched, context: Context, *, acknowledged: bool) -> None:
    watcher = _watcher_of(context)
    if acknowledged and watcher is not None and context.principal is not None:
        watcher.watch(context.principal.token_id, socket)

"""Waiting for an order to settle: the ``paymentConfirmation`` subscription
over one WebSocket (protocol ``graphql-transport-ws``) kept for the whole run.

The subscription sends the order's current status first, then each change, so
after a lost connection subscribing again loses nothing: the script reconnects
until the row's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from bulk_orders.retry import RetryPolicy, retry_after

__all__ = ["SETTLED", "TERMINAL", "ConfirmationWatcher", "SubscriptionRefused"]

log = logging.getLogger("bulk_orders")

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
# REQUIRES_ACTION waits for the cardholder (3-D Secure): nothing an unattended
# script can finish, so it stops waiting there too.
SETTLED = TERMINAL | {"REQUIRES_ACTION"}

PAYMENT_CONFIRMATION = """
subscription PaymentConfirmation($customer: ID!, $order: ID!) {
  paymentConfirmation(actingCustomer: $customer, orderId: $order) {
    status
    order { id status failureReason createdAt total { amount currency } }
  }
}
"""
_PROTOCOL = Subprotocol("graphql-transport-ws")
# The gateway closes with 4401 (4403 on older versions) when it refuses the token.
_TOKEN_REFUSED = frozenset({4401, 4403})


class SubscriptionRefused(Exception):
    """The gateway refused to confirm this order (a code such as NOT_FOUND)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class _TryAgain(Exception):
    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        self.reason = reason
        self.wait_s = wait_s
        super().__init__(reason)


@dataclass
class _Progress:
    order: dict[str, Any] | None = None  # the newest ``order`` seen


class ConfirmationWatcher:
    """Follows orders to their settled status, one at a time."""

    def __init__(self, ws_url: str, token: str, policy: RetryPolicy) -> None:
        self.ws_url = ws_url
        self.policy = policy
        self._init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        self._conn: ClientConnection | None = None
        self._last_id = 0

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def wait(self, customer_id: str, order_id: str, *, timeout_s: float, what: str) -> dict[str, Any] | None:
        """The order once its status is in :data:`SETTLED`, or the newest
        state seen (None if none) when ``timeout_s`` runs out first."""
        progress = _Progress()
        failures = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    try:
                        conn = await self._connection()
                        return await self._follow(conn, customer_id, order_id, progress)
                    except _TryAgain as again:
                        failures += 1
                        delay = again.wait_s if again.wait_s is not None else self.policy.backoff(failures)
                        log.info("%s: confirmation: %s; subscribing again in %.1f s", what, again.reason, delay)
                        await asyncio.sleep(delay)
        except TimeoutError:
            return progress.order

    async def _connection(self) -> ClientConnection:
        if self._conn is not None:
            return self._conn
        try:
            conn = await connect(self.ws_url, subprotocols=[_PROTOCOL], open_timeout=10, close_timeout=2)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in {401, 403}:
                raise SubscriptionRefused("UNAUTHENTICATED", f"WebSocket upgrade refused (HTTP {status})") from None
            raise _TryAgain(
                f"WebSocket upgrade answered HTTP {status}", retry_after(None, exc.response.headers)
            ) from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise _TryAgain(f"cannot open the WebSocket ({type(exc).__name__}: {exc})") from None
        try:
            await self._send(conn, self._init)
            while (message := await self._receive(conn))["type"] == "ping":
                await self._send(conn, {"type": "pong"})
            if message["type"] != "connection_ack":
                raise _TryAgain(f"expected connection_ack, got {message['type']!r}")
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def _follow(
        self, conn: ClientConnection, customer_id: str, order_id: str, progress: _Progress
    ) -> dict[str, Any]:
        self._last_id += 1
        op_id = str(self._last_id)
        variables = {"customer": customer_id, "order": order_id}
        document = {"query": PAYMENT_CONFIRMATION, "variables": variables}
        await self._send(conn, {"id": op_id, "type": "subscribe", "payload": document})
        finished = False
        try:
            while True:
                message = await self._receive(conn)
                kind = message["type"]
                if kind == "ping":
                    await self._send(conn, {"type": "pong"})
                    continue
                if message.get("id") != op_id:
                    continue  # the tail of an earlier order's subscription
                if kind == "complete":
                    finished = True
                    if progress.order is None:
                        raise _TryAgain("the subscription ended before any status")
                    return progress.order
                payload = message.get("payload")
                if kind == "error":
                    finished = True  # an error message ends the operation
                    _raise_for(payload)
                if kind != "next":
                    continue
                if isinstance(payload, dict) and payload.get("errors"):
                    _raise_for(payload["errors"])
                order = _order_of(payload)
                progress.order = order
                if order["status"] in SETTLED:
                    finished = order["status"] in TERMINAL  # the gateway ends the subscription itself
                    return order
        finally:
            if not finished:
                with contextlib.suppress(ConnectionClosed):
                    await conn.send(json.dumps({"id": op_id, "type": "complete"}))

    async def _send(self, conn: ClientConnection, message: dict[str, Any]) -> None:
        try:
            await conn.send(json.dumps(message))
        except ConnectionClosed as exc:
            self._lost(conn, exc)

    async def _receive(self, conn: ClientConnection) -> dict[str, Any]:
        try:
            raw = await conn.recv()
        except ConnectionClosed as exc:
            self._lost(conn, exc)
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await conn.close()
            self._conn = None
            raise _TryAgain("the gateway sent a message that is not graphql-transport-ws")
        return message

    def _lost(self, conn: ClientConnection, exc: ConnectionClosed) -> NoReturn:
        if self._conn is conn:
            self._conn = None
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code in _TOKEN_REFUSED:
            raise SubscriptionRefused("UNAUTHENTICATED", f"the gateway refused the token (WebSocket close {code})")
        raise _TryAgain(f"connection lost (close code {code})")


def _raise_for(errors: object) -> NoReturn:
    first: dict[str, Any] = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    extensions = first.get("extensions")
    code = str(extensions.get("code") or "ERROR") if isinstance(extensions, dict) else "ERROR"
    if code == "RATE_LIMITED":
        raise _TryAgain("rate limited", retry_after(errors))
    if code == "INTERNAL":
        raise _TryAgain("INTERNAL error")
    raise SubscriptionRefused(code, str(first.get("message") or "refused"))


def _order_of(payload: object) -> dict[str, Any]:
    try:
        order: dict[str, Any] = payload["data"]["paymentConfirmation"]["order"]  # type: ignore[index]
        status = order["status"]
    except (KeyError, TypeError):
        raise _TryAgain("a status message without an order") from None
    if not isinstance(status, str):
        raise _TryAgain("a status message without a status")
    return order

"""HTTP limits applied before GraphQL sees a request: body size and rate."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import RateLimit

__all__ = ["BodySizeLimit", "RateLimiter", "TokenBuckets"]


async def _send_json(send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 to bodies over ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = {"message": f"Request body exceeds {self.max_bytes} bytes.", "extensions": {"code": "BAD_USER_INPUT"}}
        await _send_json(send, 413, {"errors": [error]})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Per-key token buckets; the least recently used keys are forgotten first."""

    def __init__(self, limit: RateLimit, *, max_keys: int = 100_000) -> None:
        self.capacity = float(limit.requests)
        self.refill_per_s = limit.requests / limit.per_seconds
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """0 if allowed, else seconds until a request would be."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_s)
        bucket.updated = now
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.refill_per_s


class RateLimiter:
    """RATE_LIMITED (HTTP 429 with Retry-After) past the per-token rate.

    Keyed by a hash of the Authorization header, so it costs no database
    lookup and also slows down guessing; anonymous callers share the key of
    their address. Each instance counts on its own.
    """

    def __init__(self, app: ASGIApp, *, limit: RateLimit | None, paths: tuple[str, ...] = ("/graphql",)) -> None:
        self.app = app
        self.buckets = TokenBuckets(limit) if limit else None
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        authorization = dict(scope["headers"]).get(b"authorization")
        if authorization:
            key = hashlib.sha256(authorization).hexdigest()
        else:
            key = "anon:" + str((scope.get("client") or ("?",))[0])
        wait = self.buckets.take(key)
        if wait > 0:
            error = {"message": "Rate limit exceeded; retry later.", "extensions": {"code": "RATE_LIMITED"}}
            await _send_json(send, 429, {"errors": [error]}, [(b"retry-after", str(math.ceil(wait)).encode())])
            return
        await self.app(scope, receive, send)

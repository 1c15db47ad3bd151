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

__all__ = ["BodySizeLimit", "RateLimiter", "RateLimits", "TokenBuckets", "authorization_key"]


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


def authorization_key(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


class RateLimits:
    """The per-instance state behind :class:`RateLimiter`: one bucket per
    token that has signed in, one per address for everything else."""

    def __init__(self, limit: RateLimit | None, *, max_known: int = 100_000) -> None:
        self.buckets = TokenBuckets(limit) if limit else None
        self.max_known = max_known
        self._known: OrderedDict[str, None] = OrderedDict()

    def signed_in(self, token_key: str) -> None:
        """A token proved valid. Its first request was counted against the
        address; count it against the token too, so the token's own budget
        is exact from then on."""
        if token_key in self._known:
            self._known.move_to_end(token_key)
            return
        self._known[token_key] = None
        if len(self._known) > self.max_known:
            self._known.popitem(last=False)
        if self.buckets is not None:
            self.buckets.take("token:" + token_key)

    def bucket_key(self, token_key: str | None, client: str) -> str:
        if token_key is not None and token_key in self._known:
            return "token:" + token_key
        return "address:" + client


class RateLimiter:
    """RATE_LIMITED (HTTP 429 with Retry-After) past the per-token rate.

    A token that has signed in before gets its own bucket, found by a hash of
    the header, so the check costs no database lookup. Anything else (no
    token, a made-up one, a real one on its first request) counts against the
    caller's address, so guessing tokens cannot buy fresh buckets. Each
    instance counts on its own.
    """

    def __init__(self, app: ASGIApp, *, limits: RateLimits, paths: tuple[str, ...] = ("/graphql",)) -> None:
        self.app = app
        self.limits = limits
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        buckets = self.limits.buckets
        if buckets is None or scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        authorization = dict(scope["headers"]).get(b"authorization")
        token_key = authorization_key(authorization) if authorization else None
        wait = buckets.take(self.limits.bucket_key(token_key, str((scope.get("client") or ("?",))[0])))
        if wait > 0:
            error = {"message": "Rate limit exceeded; retry later.", "extensions": {"code": "RATE_LIMITED"}}
            await _send_json(send, 429, {"errors": [error]}, [(b"retry-after", str(math.ceil(wait)).encode())])
            return
        await self.app(scope, receive, send)

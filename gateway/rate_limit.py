"""``RATE_LIMIT``: requests per token (per client address without one).

What counts: each operation once, except a mutation, whose every root field
counts on its own (a hundred aliased ``addPaymentMethod`` are a hundred), over
HTTP and over WebSocket alike. Whose budget: a signed-in caller's token (by
its id, so however the ``Authorization`` header is spelt it is one bucket);
anything else, the client's address. A made-up token is looked up like any
other and, being unknown, counts against its address: it cannot lock out the
real tokens used from that address, which have buckets of their own.

Where the count is kept: in the process, or in Redis when the broadcast is
Redis, so every instance draws from the same bucket. If Redis stops answering
the process counts alone until it is back (degraded, not down).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
)
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from strawberry.extensions import SchemaExtension

from auth.principal import Principal
from settings import RateLimit, Settings

__all__ = [
    "LocalRateLimiter",
    "RateLimitOperations",
    "RateLimiter",
    "RedisRateLimiter",
    "make_rate_limiter",
    "operation_cost",
    "rate_key",
    "rate_limit_refusal",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

_MAX_LOCAL_KEYS = 100_000


class RateLimiter(Protocol):
    async def take(self, key: str, cost: int) -> float:
        """Spend ``cost`` from ``key``'s bucket: 0 if allowed, else seconds until it would be."""

    async def aclose(self) -> None: ...


def rate_key(principal: Principal | None, client_address: str) -> str:
    return f"token:{principal.token_id}" if principal is not None else f"address:{client_address}"


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def operation_cost(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """1 for a query or subscription; a mutation's number of root fields."""
    if operation.operation is not OperationType.MUTATION:
        return 1
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return max(1, _root_fields(operation.selection_set, fragments, set()))


def _root_fields(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]) -> int:
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += selection.name.value != "__typename"
        elif isinstance(selection, InlineFragmentNode):
            count += _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                count += _root_fields(fragment.selection_set, fragments, seen)
    return count


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class LocalRateLimiter:
    """Token buckets in this process; the least recently used keys are forgotten first."""

    def __init__(self, limit: RateLimit, *, max_keys: int = _MAX_LOCAL_KEYS) -> None:
        self.capacity = float(limit.requests)
        self.refill_per_s = limit.requests / limit.per_seconds
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def take(self, key: str, cost: int) -> float:
        return self.take_now(key, cost)

    def take_now(self, key: str, cost: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_s)
        bucket.updated = now
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        # (A cost larger than the bucket can hold is never allowed: it waits in vain.)
        return (cost - bucket.tokens) / self.refill_per_s

    async def aclose(self) -> None:
        return None


# The same token bucket, kept in Redis: atomic in a script, clocked by Redis
# itself so instances with drifting clocks agree. Returns the wait in ms.
_TAKE = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * per_ms)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return wait
"""


class RedisRateLimiter:
    """Buckets shared by every instance through Redis; the process's own
    buckets stand in while Redis does not answer."""

    def __init__(self, url: str, limit: RateLimit, *, prefix: str = "pbg:rate:", timeout_s: float = 0.5) -> None:
        self._limit = limit
        self._prefix = prefix
        self._client: Any = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._script = self._client.register_script(_TAKE)
        self._fallback = LocalRateLimiter(limit)
        self._warned_at = 0.0

    async def take(self, key: str, cost: int) -> float:
        try:
            wait_ms = await self._script(
                keys=[self._prefix + key],
                args=[self._limit.requests, self._limit.requests / (self._limit.per_seconds * 1000), cost],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if now - self._warned_at > 10:
                self._warned_at = now
                log.warning("rate limits counted per process: Redis did not answer (%s)", type(exc).__name__)
            return self._fallback.take_now(key, cost)
        return float(wait_ms) / 1000

    async def aclose(self) -> None:
        await self._client.aclose()


def make_rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.rate_limit is None:
        return None
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(settings.broadcast_url, settings.rate_limit)
    return LocalRateLimiter(settings.rate_limit)


class RateLimitOperations(SchemaExtension):
    """The same limit for what Strawberry executes itself: queries over GET,
    and every operation over WebSocket (each subscribe counts, a mutation's
    every root field). Checked once the document is parsed, before anything
    runs, so a refused subscription is an ``error`` message like any refusal."""

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.pre_execution_errors:
            refusal = await rate_limit_refusal(context.context, document, context.operation_name)
            if refusal is not None:
                response = getattr(context.context, "response", None)
                if response is not None and hasattr(response, "status_code"):
                    response.status_code = 429
                    response.headers["Retry-After"] = str(refusal.extensions["retryAfter"])  # type: ignore[index]
                context.pre_execution_errors = [refusal]
        yield


async def rate_limit_refusal(context: Any, document: DocumentNode, operation_name: str | None) -> GraphQLError | None:
    """Take the operation's cost from the caller's budget (``context`` is the
    GraphQL context); the RATE_LIMITED error if the budget has not enough."""
    request = getattr(context, "request", None)
    runtime = getattr(getattr(getattr(request, "app", None), "state", None), "runtime", None)
    limiter: RateLimiter | None = getattr(runtime, "rate_limiter", None)
    operation = get_operation_ast(document, operation_name)
    if limiter is None or request is None or operation is None:
        return None
    client = request.client.host if request.client else "?"
    wait = await limiter.take(rate_key(context.principal, client), operation_cost(document, operation))
    if wait <= 0:
        return None
    seconds = retry_after_seconds(wait)
    return GraphQLError("Rate limit exceeded; retry later.", extensions={"code": "RATE_LIMITED", "retryAfter": seconds})

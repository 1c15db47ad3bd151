"""``MAX_CONNECTIONS_PER_TOKEN``: how many open WebSockets one token may hold.

A socket takes a slot when its ``connection_init`` is accepted (before the
``connection_ack``) and gives it back however it ends: gateway.sockets gives
it back when the handler's loop ends, which every close path (client close,
server close, 4401, 1009, errors, an abrupt drop) goes through.

Where the count is kept: in the process, or in Redis when the broadcast is
Redis, so every instance shares each token's count. In Redis a token's slots
are a sorted set of socket ids scored by when each expires; the instance
holding them pushes the expiry forward every few seconds, so the slots of an
instance that was killed age out on their own. If Redis stops answering, each
process counts its own sockets until it is back (degraded, never refusing
everyone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any, Protocol

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from settings import Settings

__all__ = ["LocalSocketSlots", "RedisSocketSlots", "SocketSlots", "make_socket_slots"]

log = logging.getLogger(__name__)


class SocketSlots(Protocol):
    limit: int

    async def take(self, token_id: str, slot: str) -> bool:
        """Give ``slot`` one of the token's places; False when all are taken."""

    async def give_back(self, slot: str) -> None:
        """Free ``slot``'s place (again: nothing happens)."""

    def held(self, token_id: str) -> int:
        """How many places the token holds through this process."""

    async def run(self) -> None:
        """Whatever keeps the count right over time, until cancelled."""

    async def aclose(self) -> None: ...


class LocalSocketSlots:
    """The slots of this process's sockets."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._token_of: dict[str, str] = {}
        self._slots: defaultdict[str, set[str]] = defaultdict(set)

    async def take(self, token_id: str, slot: str) -> bool:
        if self.held(token_id) >= self.limit:
            return False
        self.add(token_id, slot)
        return True

    def add(self, token_id: str, slot: str) -> None:
        """Note a slot whatever the count (one granted elsewhere)."""
        self._token_of[slot] = token_id
        self._slots[token_id].add(slot)

    def remove(self, slot: str) -> str | None:
        """Forget ``slot``; returns its token, None if it was not held."""
        token_id = self._token_of.pop(slot, None)
        if token_id is not None:
            slots = self._slots[token_id]
            slots.discard(slot)
            if not slots:
                del self._slots[token_id]
        return token_id

    def by_token(self) -> dict[str, list[str]]:
        return {token_id: sorted(slots) for token_id, slots in self._slots.items()}

    def holds(self, slot: str) -> bool:
        return slot in self._token_of

    async def give_back(self, slot: str) -> None:
        self.remove(slot)

    def held(self, token_id: str) -> int:
        slots = self._slots.get(token_id)
        return len(slots) if slots else 0

    async def run(self) -> None:
        await asyncio.Event().wait()  # nothing to maintain

    async def aclose(self) -> None:
        return None


# Drop expired slots, count, add: atomic in a script, clocked by Redis itself
# so instances with drifting clocks agree. ARGV: limit, ttl ms, slot.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# Push the expiry of a token's live slots forward. Adding (not only
# updating) puts them back after Redis lost its data. ARGV: ttl ms, slots…
_REFRESH = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expires, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 0
"""

_TTL_S = 30.0
_REFRESH_S = 10.0
_ERRORS = (RedisError, OSError, TimeoutError)


class RedisSocketSlots:
    """Slots shared by every instance through Redis; this process's own
    count stands in while Redis does not answer."""

    def __init__(
        self,
        url: str,
        limit: int,
        *,
        prefix: str = "pbg:sockets:",
        ttl_s: float = _TTL_S,
        refresh_s: float = _REFRESH_S,
        timeout_s: float = 0.5,
    ) -> None:
        self.limit = limit
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._refresh_s = refresh_s
        self._client: Any = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._take = self._client.register_script(_TAKE)
        self._refresh = self._client.register_script(_REFRESH)
        # This process's slots: what the refresh keeps alive, and the count
        # while Redis is away.
        self._local = LocalSocketSlots(limit)
        self._warned_at = 0.0

    async def take(self, token_id: str, slot: str) -> bool:
        try:
            taken = await self._take(keys=[self._prefix + token_id], args=[self.limit, self._ttl_ms, slot])
        except _ERRORS as exc:
            self._warn(exc)
            return await self._local.take(token_id, slot)
        if taken:
            self._local.add(token_id, slot)
        return bool(taken)

    async def give_back(self, slot: str) -> None:
        token_id = self._local.remove(slot)
        if token_id is None:
            return
        try:
            await self._client.zrem(self._prefix + token_id, slot)
        except _ERRORS as exc:
            # Not refreshed any more, it ages out within the expiry.
            self._warn(exc)

    def held(self, token_id: str) -> int:
        return self._local.held(token_id)

    async def refresh(self) -> None:
        held = self._local.by_token()
        if not held:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for token_id, slots in held.items():
                await self._refresh(keys=[self._prefix + token_id], args=[self._ttl_ms, *slots], client=pipe)
            await pipe.execute()
        # A slot given back while the refresh was under way was put back by
        # it: take it out again.
        gone = [(token_id, slot) for token_id, slots in held.items() for slot in slots if not self._local.holds(slot)]
        for token_id, slot in gone:
            await self._client.zrem(self._prefix + token_id, slot)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                self._warn(exc)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning("WebSockets per token counted per process: Redis did not answer (%s)", type(exc).__name__)


def make_socket_slots(settings: Settings) -> SocketSlots | None:
    """None when there is no limit (``MAX_CONNECTIONS_PER_TOKEN=0``)."""
    limit = settings.max_connections_per_token
    if limit == 0:
        return None
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        return RedisSocketSlots(settings.broadcast_url, limit)
    return LocalSocketSlots(limit)

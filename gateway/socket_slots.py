"""``MAX_CONNECTIONS_PER_TOKEN``: how many open WebSockets one token may hold.

A socket takes a slot when its ``connection_init`` is accepted (before the
``connection_ack``) and gives it back however it ends: gateway.sockets gives
it back when the handler's loop ends, which every close path (client close,
server close, 4401, 1009, errors, an abrupt drop) goes through.

The count is kept in the process: the cap is per process.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

from settings import Settings

__all__ = ["LocalSocketSlots", "SocketSlots", "make_socket_slots"]


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


def make_socket_slots(settings: Settings) -> SocketSlots | None:
    """None when there is no limit (``MAX_CONNECTIONS_PER_TOKEN=0``)."""
    limit = settings.max_connections_per_token
    if limit == 0:
        return None
    return LocalSocketSlots(limit)

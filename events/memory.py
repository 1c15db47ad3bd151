"""``BROADCAST_URL=memory://``: rings between the tasks of one process.

Our own rather than ``broadcaster._backends.memory.MemoryBackend``, which is a
private module of broadcaster (not part of its public ``Broadcast``,
``BroadcastBackend``, ``Event``) and may move in any release. Unlike that one
its inbox is bounded: a ring only says "re-read the database", so when the
listener falls ``max_pending`` rings behind, further rings are dropped and the
hub's periodic poll delivers the events anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broadcaster import BroadcastBackend, Event

__all__ = ["InProcessBackend"]


class InProcessBackend(BroadcastBackend):
    def __init__(self, url: str = "memory://", *, max_pending: int = 1000) -> None:
        # BroadcastBackend.__init__ only raises NotImplementedError: not called.
        self._subscribed: set[str] = set()
        self._published: asyncio.Queue[Event] = asyncio.Queue(max_pending)

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def publish(self, channel: str, message: Any) -> None:
        if channel in self._subscribed and not self._published.full():
            self._published.put_nowait(Event(channel=channel, message=message))

    async def next_published(self) -> Event:
        while True:
            event = await self._published.get()
            if event.channel in self._subscribed:  # it may have unsubscribed since
                return event

"""When each token was last used, without a database write per request.

Every authenticated request (and every re-check of an open WebSocket) notes
its token here, in memory; a runtime task writes what was noted in batches
every few seconds and once more at shutdown. One statement per batch of up to
:data:`BATCH` tokens stamps them all with the newest use in the batch, so a
token's ``last_used_at`` may read up to one flush interval later than its
true last use, and never moves backwards (two instances flushing in either
order leave the later stamp).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import bindparam, or_, update

from models.base import utcnow
from models.database import Database, DatabaseUnavailable, Query, any_of
from models.tables import api_tokens

__all__ = ["BATCH", "TokenUsage"]

log = logging.getLogger(__name__)

BATCH = 500

_STAMP = Query(
    update(api_tokens)
    .where(
        any_of(api_tokens.c.id, "ids"),
        or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at < bindparam("at")),
    )
    .values(last_used_at=bindparam("at"))
)


class TokenUsage:
    """Last-use times noted in memory (at most ``max_pending`` tokens; past
    that the flusher is woken early) and flushed by :meth:`run`."""

    def __init__(self, db: Database, *, interval_s: float, max_pending: int = 50_000) -> None:
        self._db = db
        self._interval = interval_s
        self._max_pending = max_pending
        self._pending: dict[str, datetime] = {}
        self._wake = asyncio.Event()

    def seen(self, token_id: str, at: datetime | None = None) -> None:
        if not token_id:
            return
        self._pending[token_id] = at or utcnow()
        if len(self._pending) >= self._max_pending:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write what was noted; returns how many tokens were stamped. On a
        database error the notes are kept for the next flush."""
        pending, self._pending = self._pending, {}
        ids = sorted(pending)
        written = 0
        async with self._db.connection() as conn:
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                try:
                    await conn.write(_STAMP, ids=chunk, at=max(pending[i] for i in chunk))
                except DatabaseUnavailable as exc:
                    for token_id in ids[start:]:
                        # Keep a newer note taken meanwhile.
                        self._pending.setdefault(token_id, pending[token_id])
                    log.warning("could not record token use (%s); will retry", exc)
                    return written
                written += len(chunk)
        return written

    async def run(self) -> None:
        """Flush every interval (or sooner when many tokens wait) until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording token use failed")

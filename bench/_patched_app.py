"""The gateway with experimental patches, for ``bench/what_if.py`` only.

``BENCH_PATCHES`` (comma-separated) chooses which; each one monkeypatches the
app in memory, before ``gateway.asgi`` builds it, to measure a suggested fix
without editing app code. Served as ``_patched_app:app`` with ``bench/`` on
``PYTHONPATH``. Nothing here is meant for production.

* ``validation-cache``: build the depth/alias validation rule class once, so
  strawberry's ``ValidationCache`` (keyed by the rule classes) can hit.
* ``fanout-order-once``: in subscriptions, load an event's order once per event
  instead of once per subscriber.
* ``write-lock``: queue SQLite writers on an in-process ``asyncio.Lock``
  before ``BEGIN IMMEDIATE`` instead of in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from typing import Any

PATCHES = {p.strip() for p in os.environ.get("BENCH_PATCHES", "").split(",") if p.strip()}
KNOWN = {"validation-cache", "fanout-order-once", "write-lock"}
if PATCHES - KNOWN:
    raise SystemExit(f"unknown BENCH_PATCHES: {sorted(PATCHES - KNOWN)}; known: {sorted(KNOWN)}")

if "validation-cache" in PATCHES:
    import schema.limits
    import schema.root

    schema.root.complexity_rule = functools.cache(schema.limits.complexity_rule)  # type: ignore[assignment]

if "fanout-order-once" in PATCHES:
    import subscriptions.streams as streams
    from models import Order as OrderRow

    _orders: dict[int, asyncio.Future[Any]] = {}

    async def _load(db: Any, order_id: str) -> Any:
        async with db.read() as session:
            return await session.get(OrderRow, order_id)

    async def _as_graphql(info: Any, event: Any) -> Any:
        loading = _orders.get(event.seq)
        if loading is None:
            loading = asyncio.ensure_future(_load(info.context.services.db, event.order_id))
            _orders[event.seq] = loading
            while len(_orders) > 256:
                _orders.pop(next(iter(_orders)))
        return streams.OrderStatusEvent.of(event, await loading)

    streams._as_graphql = _as_graphql

if "write-lock" in PATCHES:
    import models.database as database

    _write = database.Database.write
    _locks: dict[int, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def _locked_write(self: Any) -> AsyncIterator[Any]:
        if not self.is_sqlite:
            async with _write(self) as session:
                yield session
            return
        async with _locks.setdefault(id(self), asyncio.Lock()), _write(self) as session:
            yield session

    database.Database.write = _locked_write  # type: ignore[method-assign]

from gateway.asgi import app  # noqa: E402

__all__ = ["app"]

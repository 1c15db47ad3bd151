"""Engines and sessions.

Reads use ordinary transactions. Writes on SQLite start with ``BEGIN IMMEDIATE``
so a transaction that reads then writes takes the write lock up front instead of
failing with "database is locked" when another writer got there first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["Database"]

_SQLITE_BUSY_TIMEOUT_S = 30


def _sqlite_engine(url: str, *, begin: str) -> AsyncEngine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0].lower() != "wal":
            # WAL is a property of the file, set once. Switching needs a lock
            # that a concurrent writer may hold; whoever gets it sets it for all.
            with contextlib.suppress(Exception):
                cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """The gateway's database: ``read()`` and ``write()`` give short sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, begin="BEGIN")
            self._write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
        else:
            self.engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self._write_engine = self.engine
        self._reader = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._writer = async_sessionmaker(self._write_engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends and rolls back on error."""
        async with self._writer() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._write_engine is not self.engine:
            await self._write_engine.dispose()

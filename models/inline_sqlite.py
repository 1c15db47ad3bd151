"""SQLite statements run on the event loop's own thread, bounded in time.

aiosqlite runs each statement on a thread of its own and hands the result
back to the event loop. On a busy 2-core machine that hand-off costs about
0.3 ms of CPU a statement (the queue, the wake-ups, the GIL passed back and
forth around every ``sqlite3_step``), where the statement itself, an indexed
lookup in pages the OS has cached, costs tens of microseconds: measured on
the dashboard read, three hand-offs were 60% of its CPU. So short statements
run here, on the loop's thread, and the thread path stays for what may wait:

* nothing here ever waits for a lock: both connections have a busy timeout
  of zero, and a statement that finds the database busy is not run here (the
  caller sends it through aiosqlite's thread, whose busy handler may wait);
* a read that runs longer than :data:`READ_BUDGET_S` is interrupted (a
  progress handler) and likewise sent through the thread, so one large read
  never holds up the other requests for more than that; that statement
  then goes through the thread for its next 64 runs before it is tried here
  again;
* the writer never checkpoints the write-ahead log itself (a checkpoint
  copies pages and syncs the file): :meth:`InlineSqlite.checkpoint_due` says
  when the caller should run one through the thread.

The reader is ``query_only`` and only ever runs single statements outside any
transaction, so each sees everything committed before it (a mutation's answer
sees its own writes). The writer is used only by the holder of the process's
writer lock, inside ``BEGIN IMMEDIATE`` … ``COMMIT``. Both belong to the thread
that opened them; from any other thread the caller uses aiosqlite's.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = ["READ_BUDGET_S", "InlineSqlite", "InlineWriter", "NotInline", "is_busy"]

# The longest a read may hold the event loop before it is interrupted and
# sent through aiosqlite's thread instead.
READ_BUDGET_S = 0.002
# SQLite calls the progress handler every this many virtual machine steps
# (a few microseconds' worth), so the budget is checked that often.
_PROGRESS_STEPS = 2_000
# A statement that overran the budget goes straight to the thread for its
# next this many runs, then is tried here again (it may have been long only
# for one customer's many rows); at most this many statements are remembered.
_LONG_SKIPS = 64
_LONG_REMEMBERED = 256
# Commits on the writer between two checkpoints through the thread.
_CHECKPOINT_EVERY = 200


class NotInline(Exception):
    """The statement was not run here: busy, over its budget, or not this
    connection's thread. Nothing was changed; run it through the thread."""


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


class InlineSqlite:
    """A reader and a writer connection on one SQLite file, for the thread
    that opened them (the event loop's)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.owner = threading.get_ident()
        self._reader = self._open(query_only=True)
        self._deadline = 0.0
        self._reader.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
        self._writer: InlineWriter | None = None
        self._commits = 0
        # Statements run here, reads and writes (tests and benchmarks read it).
        self.statements = 0
        self._long: dict[str, int] = {}  # statement -> runs left on the thread

    def _open(self, *, query_only: bool) -> sqlite3.Connection:
        # check_same_thread is ours to enforce (``usable``): close() may come
        # from another thread once the owner is done with them.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
        conn.execute("PRAGMA busy_timeout=0")
        if query_only:
            conn.execute("PRAGMA query_only=ON")
        else:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def usable(self) -> bool:
        return threading.get_ident() == self.owner

    def _over_budget(self) -> int:
        return 1 if time.perf_counter() > self._deadline else 0

    def read(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """The rows of one read, or :class:`NotInline`."""
        if self._long and sql in self._long:
            left = self._long.pop(sql) - 1
            if left > 0:
                self._long[sql] = left
            raise NotInline("this statement ran over its budget lately")
        self._deadline = time.perf_counter() + READ_BUDGET_S
        try:
            rows = self._reader.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                if len(self._long) < _LONG_REMEMBERED:
                    self._long[sql] = _LONG_SKIPS
                raise NotInline(str(exc)) from None
            if is_busy(exc):
                raise NotInline(str(exc)) from None
            raise
        self.statements += 1
        return rows

    def writer(self) -> InlineWriter:
        if self._writer is None:
            self._writer = InlineWriter(self, self._open(query_only=False))
        return self._writer

    def committed(self) -> None:
        self._commits += 1

    def checkpoint_due(self) -> bool:
        """True once every :data:`_CHECKPOINT_EVERY` commits on the writer."""
        if self._commits < _CHECKPOINT_EVERY:
            return False
        self._commits = 0
        return True

    def close(self) -> None:
        for conn in (self._reader, self._writer.conn if self._writer else None):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._writer = None


class InlineWriter:
    """The writer connection as a driver (``models.database._Driver``): its
    methods are coroutines that never suspend."""

    dialect: ClassVar[str] = "sqlite"

    def __init__(self, owner: InlineSqlite, conn: sqlite3.Connection) -> None:
        self._owner = owner
        self.conn = conn

    async def fetch(self, sql: str, args: list[Any]) -> Sequence[Sequence[Any]]:
        rows = self.conn.execute(sql, args).fetchall()
        self._owner.statements += 1
        return rows

    async def begin(self, *, write: bool) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise NotInline(str(exc)) from None
            raise

    async def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            # Never leave the shared writer inside a transaction.
            with contextlib.suppress(sqlite3.Error):
                await self.rollback()
            raise
        self._owner.committed()

    async def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    async def close(self) -> None:
        return None

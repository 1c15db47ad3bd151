"""Short SQLite statements run on the event loop's thread (models.inline_sqlite),
on a real SQLite file: reads and write transactions skip aiosqlite's thread,
a long read is interrupted and finished on the thread without holding up the
loop, another process's write lock sends writers to the thread, the log is
checkpointed, and dispose closes everything."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import bindparam, text

from models.database import Database, DatabaseBusy, Query, UniqueViolation
from models.inline_sqlite import READ_BUDGET_S

_CREATE = Query(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"))
_INSERT = Query(text("INSERT INTO item (name) VALUES (:name) RETURNING id").bindparams(bindparam("name")))
_NAMES = Query(text("SELECT name FROM item ORDER BY id"))
_COUNT = Query(text("SELECT count(*) FROM item"))
# Counts to :n one row at a time: long enough to overrun READ_BUDGET_S many times over.
_SLOW = Query(
    text(
        "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n)"
        " SELECT x FROM c)"
    ).bindparams(bindparam("n"))
)


async def _database(tmp_path: Path, **options: object) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.sqlite3'}", **options)  # type: ignore[arg-type]
    assert await db.ping()  # the pool's first connection sets the file up (WAL)
    async with db.transaction() as tx:
        await tx.execute(_CREATE)
    return db


@contextlib.asynccontextmanager
async def _loop_gaps() -> AsyncIterator[list[float]]:
    """The pauses between turns of the event loop while the block runs."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    await asyncio.sleep(0)  # the ticker has started: a pause from here on shows
    try:
        yield gaps
    finally:
        ticker.cancel()


async def test_reads_and_write_transactions_run_on_the_loops_thread(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    try:
        before, inline_before = db.statements, db.inline_statements
        async with db.transaction() as tx:
            assert await tx.scalar(_INSERT, name="a") == 1
            assert await tx.scalar(_COUNT) == 1  # inside the transaction: its own write
        conn = db.connection()
        assert [row[0] for row in await conn.all(_NAMES)] == ["a"]  # committed, seen at once
        assert db.statements - before == 3
        assert db.inline_statements - inline_before == 3
    finally:
        await db.dispose()


async def test_switched_off_every_statement_goes_through_the_pool(tmp_path: Path) -> None:
    db = await _database(tmp_path, inline=False)
    try:
        async with db.transaction() as tx:
            await tx.execute(_INSERT, name="a")
        assert await db.connection().scalar(_COUNT) == 1
        assert db.inline_statements == 0
    finally:
        await db.dispose()


async def test_a_failed_inline_transaction_is_rolled_back_and_the_writer_reused(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    try:
        async with db.transaction() as tx:
            await tx.execute(_INSERT, name="a")
        try:
            async with db.transaction() as tx:
                await tx.execute(_INSERT, name="b")
                await tx.execute(_INSERT, name="a")  # unique: the whole transaction goes
        except UniqueViolation:
            pass
        else:
            raise AssertionError("the duplicate name was accepted")
        async with db.transaction() as tx:
            await tx.execute(_INSERT, name="c")
        assert [row[0] for row in await db.connection().all(_NAMES)] == ["a", "c"]
    finally:
        await db.dispose()


async def test_a_long_read_finishes_on_the_thread_without_holding_the_loop(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    try:
        assert await db.connection().scalar(_SLOW, n=10) == 10  # short: on the loop
        inline_before = db.inline_statements
        assert inline_before == 2  # the CREATE and that read
        n = 2_000_000
        async with _loop_gaps() as gaps:
            started = time.perf_counter()
            assert await db.connection().scalar(_SLOW, n=n) == n
            took = time.perf_counter() - started
        # The read was interrupted on the loop and run on aiosqlite's thread.
        assert db.inline_statements == inline_before
        # Known to be long now, it goes to the thread at once, whatever n,
        # for its next 64 runs; then it is tried on the loop again.
        for _ in range(64):
            assert await db.connection().scalar(_SLOW, n=10) == 10
        assert db.inline_statements == inline_before
        assert await db.connection().scalar(_SLOW, n=10) == 10
        assert db.inline_statements == inline_before + 1
        assert took > 0.1, took  # long enough for the gaps to mean something
        # The loop kept turning meanwhile: no pause near the read's length.
        assert gaps and max(gaps) < max(20 * READ_BUDGET_S, took / 4), (max(gaps), took)
    finally:
        await db.dispose()


async def test_another_process_holding_the_write_lock_sends_writers_to_the_thread(tmp_path: Path) -> None:
    db = await _database(tmp_path, busy_timeout_ms=300)
    other = sqlite3.connect(tmp_path / "inline.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with _loop_gaps() as gaps:
            started = time.perf_counter()
            try:
                async with db.transaction() as tx:
                    await tx.execute(_INSERT, name="a")
            except DatabaseBusy:
                pass
            else:
                raise AssertionError("wrote while another process held the lock")
            waited = time.perf_counter() - started
        # It waited in the pool's busy handler, off the loop, not in ours.
        assert waited >= 0.25
        assert gaps and max(gaps) < waited / 4, (max(gaps), waited)
        assert await db.connection().scalar(_COUNT) == 0  # reads go on (WAL)
        other.execute("ROLLBACK")
        async with db.transaction() as tx:
            await tx.execute(_INSERT, name="a")
        assert await db.connection().scalar(_COUNT) == 1
    finally:
        other.close()
        await db.dispose()


async def test_the_write_ahead_log_is_checkpointed_and_dispose_closes_every_connection(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    wal = tmp_path / "inline.sqlite3-wal"
    try:
        sizes = []
        for i in range(2_000):
            async with db.transaction() as tx:
                await tx.execute(_INSERT, name=f"item {i}")
            if i % 100 == 99:
                await asyncio.sleep(0.01)  # let a checkpoint run
                sizes.append(wal.stat().st_size)
        # Unchecked, the log grows by about two pages per commit (16 MB here);
        # checkpointed every 200 commits it is reused from its start.
        assert max(sizes) < 3_000_000, sizes
        assert await db.connection().scalar(_COUNT) == 2_000
    finally:
        await db.dispose()
    # The last connection to close removes the log: none was left open.
    assert not wal.exists()

"""A disposed ``Database`` leaves no driver thread behind, however its callers
ended: an aiosqlite connection left open keeps a thread running, and at some
aiosqlite versions that thread keeps the process from exiting."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from models.database import Database


def _threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.is_alive()}


def _left_running(before: set[threading.Thread], timeout: float = 2.0) -> set[threading.Thread]:
    """Threads started since ``before`` still alive after ``timeout``, waiting
    without giving the event loop a turn: what dispose did not close is not
    closed later by a task that may never run (the loop may end next)."""
    deadline = time.monotonic() + timeout
    while (left := _threads() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


async def test_callers_cancelled_while_connecting_leave_no_thread(tmp_path: Path) -> None:
    before = _threads()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}")
    for pause in (0, 0, 0.001, 0.005):
        pings = [asyncio.ensure_future(db.ping()) for _ in range(4)]
        await asyncio.sleep(pause)  # cancelled at various points of opening their connections
        for ping in pings:
            ping.cancel()
        await asyncio.gather(*pings, return_exceptions=True)
    assert await db.ping()  # what the cancelled callers opened is used, not lost
    await db.dispose()
    assert _left_running(before) == set()


async def test_disposing_while_connections_open_leaves_no_thread(tmp_path: Path) -> None:
    before = _threads()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}")
    pings = [asyncio.ensure_future(db.ping()) for _ in range(4)]
    await asyncio.sleep(0)
    await db.dispose()  # while the four are connecting
    assert _left_running(before) == set()
    assert not any(await asyncio.gather(*pings, return_exceptions=True))  # none got a connection

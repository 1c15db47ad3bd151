"""Fixtures for the scale-out tests: this machine's PostgreSQL and Redis.

``TEST_POSTGRES_ADMIN_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres)
is where throwaway databases are created and dropped; ``TEST_REDIS_URL``
(default redis://127.0.0.1:6379/0) is the shared Redis. A server that is not
there skips these tests with the reason, except with ``CI=true``, where it
fails them (``.ci/run`` starts both first, through ``scripts/services``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from models.database import Database
from settings import Settings
from tests.support.processes import PrivateRedis
from tests.support.services import require_redis, unavailable

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_PROBE_TIMEOUT_S = 5.0


def _run(coro: Any, timeout: float = 30.0) -> Any:
    """Run a coroutine to completion in a thread of its own, so fixtures of any
    scope can use asyncpg without touching pytest-asyncio's event loops."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=timeout)


@dataclass(frozen=True)
class PostgresServer:
    """Makes and drops uniquely named databases on the test server."""

    admin_url: str

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=_PROBE_TIMEOUT_S)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def url(self, name: str, driver: str = "postgresql+asyncpg") -> str:
        base = self.admin_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"{driver}://{base}/{name}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"pbg_test_{uuid.uuid4().hex[:12]}"
        _run(self._execute(f'CREATE DATABASE "{name}"'))
        return name

    def drop_database(self, name: str) -> None:
        """Drop it, closing whatever connections are still open to it."""
        _run(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    server = PostgresServer(POSTGRES_ADMIN_URL)
    try:
        _run(server._execute("SELECT 1"), timeout=_PROBE_TIMEOUT_S + 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable(f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {exc!r}")
    return server


@pytest.fixture(scope="module")
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """An async SQLAlchemy URL of a database of this test module's own."""
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture
def fresh_pg_url(postgres: PostgresServer) -> Iterator[str]:
    """An empty database of this test's own."""
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not on PATH: cannot run the Redis restart tests")
    server = PrivateRedis(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    """The module's database, for a test to seed and inspect directly."""
    db = Database(pg_url)
    try:
        yield db
    finally:
        await db.dispose()


def pg_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for an in-process gateway on PostgreSQL, as tests/conftest's sqlite_settings."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "sandbox_confirm_delay_ms": 50,
        "rate_limit": None,
        "reconcile_interval_s": 0,
        "renewal_interval_s": 0,
        "event_poll_interval_s": 0.5,
    }
    values.update(overrides)
    return Settings(**values)

"""Alembic migrations on SQLite and PostgreSQL: they build the schema the models
describe, run safely twice and from several processes at once, and adopt a
database that create_all made before migrations existed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

from cli.main import _parser, cmd_migrate
from gateway.bootstrap import prepare_database
from migrations.runner import BASELINE_REVISION, alembic_config, current_revision, head_revision, migrate
from models import Partner, Plan
from models.database import Database
from tests.support.processes import REPO_ROOT

MODEL_TABLES = set(SQLModel.metadata.tables)
CLI_TIMEOUT_S = 60


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def _run(db: Database, fn: Any) -> Any:
    async with db.engine().connect() as connection:
        return await connection.run_sync(fn)


async def _version_rows(db: Database) -> list[str]:
    async with db.engine().connect() as connection:
        return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def test_upgrade_to_head_builds_every_table_and_twice_is_a_no_op(empty_db: Database) -> None:
    assert head_revision() is not None
    assert await current_revision(empty_db) is None

    assert await migrate(empty_db) == head_revision()
    assert await _run(empty_db, _tables) == MODEL_TABLES | {"alembic_version"}

    assert await migrate(empty_db) == head_revision()
    assert await _version_rows(empty_db) == [head_revision()]
    assert await _run(empty_db, _tables) == MODEL_TABLES | {"alembic_version"}


async def test_models_and_migrations_do_not_drift(empty_db: Database) -> None:
    """Autogenerate finds nothing to add: every model change needs a revision."""
    await migrate(empty_db)
    assert await _run(empty_db, _differences) == []


async def test_downgrade_to_base_and_up_again(empty_db: Database) -> None:
    await migrate(empty_db)

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with empty_db.orm(write=True) as session:
        await (await session.connection()).run_sync(downgrade)
    assert await _run(empty_db, _tables) == {"alembic_version"}
    assert await migrate(empty_db) == head_revision()
    assert await _run(empty_db, _differences) == []


async def test_prepare_database_migrates_and_fills_the_catalogue_once(empty_db: Database) -> None:
    await prepare_database(empty_db)
    await prepare_database(empty_db)
    async with empty_db.orm() as session:
        plans = (await session.exec(select(func.count()).select_from(Plan))).one()
    assert plans == 6


async def test_a_database_made_by_create_all_is_adopted_with_its_data(empty_db: Database) -> None:
    # What create_all made back then: the baseline's tables, no alembic_version.
    await migrate(empty_db, BASELINE_REVISION)
    async with empty_db.engine(write=True).begin() as connection:
        await connection.execute(text("DROP TABLE alembic_version"))
    async with empty_db.orm(write=True) as session:
        session.add(Partner(id="ptn_legacy", name="Made before migrations"))

    await prepare_database(empty_db)

    assert await current_revision(empty_db) == head_revision()
    async with empty_db.orm() as session:
        assert (await session.get(Partner, "ptn_legacy")) is not None
    assert await _run(empty_db, _differences) == []


async def test_instances_starting_at_once_migrate_once(empty_db: Database) -> None:
    """Each "instance" has its own engine, as separate processes would; on
    PostgreSQL the advisory lock, on SQLite BEGIN IMMEDIATE, lets one migrate
    while the others wait and then find nothing to do."""
    instances = [Database(empty_db.url) for _ in range(6)]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(prepare_database(db) for db in instances))
    finally:
        await asyncio.gather(*(db.dispose() for db in instances))
    assert await _version_rows(empty_db) == [head_revision()]
    async with empty_db.orm() as session:
        assert (await session.exec(select(func.count()).select_from(Plan))).one() == 6


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def test_cli_migrate_then_seed_demo_on_a_fresh_postgres_database(fresh_pg_url: str) -> None:
    migrated = _cli("-m", "cli", "migrate", "--json", database_url=fresh_pg_url)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout) == {"revision": head_revision()}

    seeded = _cli("-m", "cli", "seed-demo", "--json", database_url=fresh_pg_url)
    assert seeded.returncode == 0, seeded.stderr
    tenant = json.loads(seeded.stdout)
    assert len(tenant["customers"]) == 2 and set(tenant["tokens"]) == {
        "PARTNER_OWNER",
        "PARTNER_FINANCE_ADMIN",
        "PARTNER_ADMIN",
    }


def test_seed_demo_on_a_fresh_sqlite_file_and_alembic_command_line(tmp_path: Path) -> None:
    """``seed-demo`` migrates a brand-new file first; alembic.ini's command line
    (what developers use to write revisions) then finds nothing to generate."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    seeded = _cli("-m", "cli", "seed-demo", "--json", database_url=url)
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout)["partner"]["id"]

    check = _cli("-m", "alembic", "-x", f"url={url}", "check", database_url="sqlite+aiosqlite:///unused")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_the_procfile_migrates_on_release_and_serves_on_port() -> None:
    entries = dict(
        line.split(":", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line and ":" in line
    )
    assert entries["release"].strip() == "partner-billing migrate"
    assert _parser().parse_args(["migrate"]).handler is cmd_migrate
    assert "--port ${PORT" in entries["web"] and "--workers ${WEB_CONCURRENCY" in entries["web"]

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

from billing.catalog import customer_products
from billing.periods import current_period
from cli.main import _parser, cmd_migrate
from gateway.bootstrap import prepare_database
from migrations.runner import BASELINE_REVISION, alembic_config, current_revision, head_revision, migrate
from models import BillingInterval, Partner, Plan, ProductStatus
from models.database import Database
from tests.support.processes import REPO_ROOT

MODEL_TABLES = set(SQLModel.metadata.tables)

# Tables as revision 0001 made them, for rows written before the renewals revision.
_PARTNERS = sa.table(
    "partners", sa.column("id"), sa.column("name"), sa.column("created_at", sa.DateTime(timezone=True))
)
_CUSTOMERS = sa.table(
    "customers",
    sa.column("id"),
    sa.column("partner_id"),
    sa.column("name"),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_PLANS = sa.table(
    "plans",
    *(sa.column(name) for name in ("id", "name", "kind", "monthly_price_minor", "yearly_price_minor", "currency")),
    sa.column("sort_order"),
    sa.column("active", sa.Boolean()),
)
_OLD_PRODUCTS = sa.table(
    "products",
    *(sa.column(name) for name in ("id", "customer_id", "plan_id", "plan_kind", "billing_interval")),
    sa.column("total_licenses"),
    sa.column("assigned_licenses"),
    *(sa.column(name, sa.DateTime(timezone=True)) for name in ("period_anchor", "created_at", "updated_at")),
)
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
    # What create_all made before migrations existed: the baseline's tables
    # (today's models have moved on since), with no alembic_version.
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


async def test_renewals_revision_gives_existing_products_the_period_their_anchor_gives_now(
    empty_db: Database,
) -> None:
    """A product made before stored periods gets the period it showed as
    current until then, and is ACTIVE with nothing scheduled."""
    await migrate(empty_db, "0001")
    anchors = {
        "prd_monthly": (datetime(2024, 1, 31, 9, 0, tzinfo=UTC), BillingInterval.MONTHLY),
        "prd_yearly": (datetime(2020, 2, 29, tzinfo=UTC), BillingInterval.YEARLY),
        "prd_future": (datetime(2999, 5, 1, tzinfo=UTC), BillingInterval.MONTHLY),
    }
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    async with empty_db.engine(write=True).begin() as connection:
        await connection.execute(sa.insert(_PARTNERS).values(id="ptn_old", name="Before renewals", created_at=stamp))
        await connection.execute(
            sa.insert(_CUSTOMERS).values(id="cst_old", partner_id="ptn_old", name="Old customer", created_at=stamp)
        )
        await connection.execute(
            sa.insert(_PLANS).values(
                id="plan_old",
                name="Old plan",
                kind="BACKUP",
                monthly_price_minor=100,
                yearly_price_minor=1000,
                currency="USD",
                sort_order=0,
                active=True,
            )
        )
        for product_id, (anchor, interval) in anchors.items():
            await connection.execute(
                sa.insert(_OLD_PRODUCTS).values(
                    id=product_id,
                    customer_id="cst_old",
                    plan_id="plan_old",
                    plan_kind="BACKUP",
                    billing_interval=interval.value,
                    total_licenses=5,
                    assigned_licenses=2,
                    period_anchor=anchor,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
    now = datetime.now(UTC)

    assert await migrate(empty_db) == head_revision()

    async with empty_db.connection() as conn:
        for product_id, (anchor, interval) in anchors.items():
            _, products = await customer_products(conn, "ptn_old", "cst_old")
            view = next(p for p in products if p.id == product_id)
            expected = current_period(anchor, interval, now)
            assert (view.current_period_start, view.current_period_end) == (expected.start, expected.end), product_id
            assert view.next_renewal_at == view.renews_at == expected.end
            assert (view.status, view.cancel_at_period_end, view.scheduled_licenses, view.renewal_attempts) == (
                ProductStatus.ACTIVE,
                False,
                None,
                0,
            )
            assert (view.period_anchor, view.total_licenses) == (anchor, 5)
            assert view.current_period_start <= now < view.current_period_end or anchor > now
    assert await _run(empty_db, _differences) == []

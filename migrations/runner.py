"""Run the migrations: bring the database schema to a revision.

Every gateway process migrates at startup (so the embedded default needs no
separate step), and ``partner-billing migrate`` does it as a deployment's
release step. Several processes may start at once on one database, so the
whole of it runs in one write transaction that first takes the *schema lock*:

* on PostgreSQL a transaction-scoped advisory lock (``pg_advisory_xact_lock``),
  so the second process waits, then finds the schema at head and does nothing;
  PostgreSQL's DDL is transactional, so a failed migration leaves nothing half done;
* on SQLite the write transaction itself (``BEGIN IMMEDIATE``) is the lock.

A database made by ``SQLModel.metadata.create_all`` before migrations existed
(all of the baseline's tables, no ``alembic_version``) is adopted: stamped at
the baseline revision, then upgraded like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel.ext.asyncio.session import AsyncSession

import models  # noqa: F401 - registers the tables
from migrations import SCRIPT_LOCATION
from models.database import Database

__all__ = [
    "BASELINE_REVISION",
    "alembic_config",
    "current_revision",
    "head_revision",
    "migrate",
    "schema_transaction",
    "upgrade_to_head",
]

# Any constant will do, as long as no other advisory lock uses it
# (billing.events takes 0x0B111 for the event stream).
_SCHEMA_LOCK = 0x0B5C4E

BASELINE_REVISION = "0001"
# The tables create_all made before migrations existed, i.e. the baseline's.
_BASELINE_TABLES = frozenset(
    {
        "api_tokens",
        "audit_entries",
        "customers",
        "order_events",
        "order_lines",
        "orders",
        "partners",
        "payment_methods",
        "plans",
        "processed_webhook_events",
        "products",
        "sandbox_payment_methods",
        "sandbox_payments",
        "users",
    }
)


def alembic_config() -> Config:
    """Alembic's configuration, built in code: an installed gateway has no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@asynccontextmanager
async def schema_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """A write transaction holding the schema lock until it commits or rolls back."""
    async with db.orm(write=True) as session:
        if not db.is_sqlite:
            connection = await session.connection()
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        yield session


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection  # migrations/env.py runs on it
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and _BASELINE_TABLES.issubset(tables):
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(db: Database, revision: str = "head") -> str | None:
    """Upgrade the schema to ``revision`` (default: the latest); returns where it ends."""
    async with schema_transaction(db) as session:
        connection = await session.connection()
        await connection.run_sync(_upgrade, revision)
        return await connection.run_sync(_current)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at; None before the first migration."""
    async with db.engine().connect() as connection:
        return await connection.run_sync(_current)


async def upgrade_to_head(session: AsyncSession) -> None:
    """Inside a :func:`schema_transaction`: migrate its connection to head."""
    connection = await session.connection()
    await connection.run_sync(_upgrade, "head")

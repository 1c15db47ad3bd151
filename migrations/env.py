"""Alembic's environment for the gateway's database.

Two ways in:

* ``migrations.runner`` (gateway startup, ``partner-billing migrate``/``init-db``)
  opens a write transaction, takes the schema lock, and hands its connection
  over as ``config.attributes["connection"]``; the migrations run inside that
  transaction and this file opens nothing itself.
* The ``alembic`` command line (``alembic.ini`` at the repository root), for
  writing revisions: it migrates ``-x url=…``, else the ``sqlalchemy.url`` of
  the config, else ``DATABASE_URL``, through the same locked transaction.
  ``--sql`` (offline) prints the SQL instead.
"""

from __future__ import annotations

import asyncio
import logging.config
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import models  # noqa: F401 - registers every table on SQLModel.metadata

target_metadata = SQLModel.metadata
config = context.config


def _database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from settings import load_settings

    return load_settings().database_url


def render_item(kind: str, item: Any, _autogen: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes the models' own column types as plain SQLAlchemy
    ones, so revisions never import application code that may change."""
    if kind != "type":
        return False
    if isinstance(item, AutoString):
        return f"sa.String(length={item.length})" if item.length else "sa.String()"
    if isinstance(item, sa.types.TypeDecorator) and isinstance(item.impl_instance, sa.DateTime):
        return f"sa.DateTime(timezone={item.impl_instance.timezone})"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things, so autogenerate writes batch
        # operations, whichever database it compared against: SQLite then
        # copies the table, PostgreSQL simply runs the ALTERs.
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online(url: str) -> None:
    from migrations.runner import schema_transaction
    from models.database import Database

    db = Database(url)
    try:
        async with schema_transaction(db) as session:
            connection = await session.connection()
            await connection.run_sync(run_migrations)
    finally:
        await db.dispose()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    if config.config_file_name is not None:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(run_online(_database_url()))

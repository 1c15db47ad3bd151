"""Create or update the database schema and the catalogue."""

from __future__ import annotations

from sqlmodel import SQLModel

import models  # noqa: F401 - registers the tables
from billing.catalog import ensure_catalog
from models.database import Database

__all__ = ["prepare_database"]


async def prepare_database(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    async with db.write() as session:
        await ensure_catalog(session)

"""Prepare a database for the gateway: the schema at head, the catalogue filled in."""

from __future__ import annotations

from billing.catalog import ensure_catalog
from migrations.runner import schema_transaction, upgrade_to_head
from models.database import Database

__all__ = ["prepare_database"]


async def prepare_database(db: Database) -> None:
    """Migrate to head and insert missing catalogue plans, under the schema lock
    (several instances starting at once do it one after the other)."""
    async with schema_transaction(db) as session:
        await upgrade_to_head(session)
        await ensure_catalog(session)

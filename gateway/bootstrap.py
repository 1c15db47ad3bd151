"""Prepare a database for the gateway: the schema at head, the catalogue filled
in, the gateway's own secrets made."""

from __future__ import annotations

import secrets

from sqlmodel.ext.asyncio.session import AsyncSession

from billing.catalog import ensure_catalog
from migrations.runner import schema_transaction, upgrade_to_head
from models import GatewaySecret
from models.database import Database
from settings import Settings

__all__ = ["CURSOR_SECRET", "cursor_secret", "prepare_database"]

CURSOR_SECRET = "cursor"


async def prepare_database(db: Database) -> None:
    """Migrate to head, insert missing catalogue plans and generate missing
    secrets, under the schema lock (several instances starting at once do it
    one after the other, so they end up with the same secret)."""
    async with schema_transaction(db) as session:
        await upgrade_to_head(session)
        await ensure_catalog(session)
        await _ensure_secret(session, CURSOR_SECRET)


async def _ensure_secret(session: AsyncSession, name: str) -> None:
    if await session.get(GatewaySecret, name) is None:
        session.add(GatewaySecret(name=name, value=secrets.token_urlsafe(48)))


async def cursor_secret(db: Database, settings: Settings) -> str:
    """``CURSOR_SECRET`` if set, else the one stored by :func:`prepare_database`."""
    if settings.cursor_secret:
        return settings.cursor_secret
    async with db.orm() as session:
        stored = await session.get(GatewaySecret, CURSOR_SECRET)
    if stored is None:
        raise RuntimeError("the database has no cursor secret: run prepare_database first")
    return stored.value

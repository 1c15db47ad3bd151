"""Secrets the gateway makes for itself, shared by every instance on the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow

__all__ = ["GatewaySecret"]


class GatewaySecret(SQLModel, table=True):
    """A named random secret, generated on first start (``gateway.bootstrap``),
    so instances that share the database agree on it without configuration."""

    __tablename__ = "gateway_secrets"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

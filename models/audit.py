"""The audit trail: every billing action, who did it, for whom, and how it ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow

__all__ = ["AuditEntry"]


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entries"
    __table_args__ = (
        # auditLog reads newest first, a partner's or one of its customers'.
        Index("audit_entries_partner_newest", "partner_id", "id"),
        Index("audit_entries_customer_newest", "partner_id", "customer_id", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    partner_id: str = Field(max_length=40)
    # None when the system acted (a provider confirmation, reconciliation).
    user_id: str | None = Field(default=None, max_length=40)
    role: str | None = Field(default=None, max_length=40)
    customer_id: str | None = Field(default=None, max_length=40)
    action: str = Field(max_length=60)
    target_id: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=60)
    detail: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

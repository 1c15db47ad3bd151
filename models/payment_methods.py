"""Cards a customer keeps on file (only the provider's reference and display data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow

__all__ = ["ONE_PRIMARY_INDEX", "PaymentMethod"]

ONE_PRIMARY_INDEX = "payment_methods_one_primary"
# The same predicate reads right on both: SQLite stores booleans as 0 and 1.
_ACTIVE_PRIMARY = "is_primary AND removed_at IS NULL"


class PaymentMethod(SQLModel, table=True):
    __tablename__ = "payment_methods"
    __table_args__ = (
        # At most one active primary card per customer, whatever the code does:
        # changes lock the customer row first, and this makes a lost race an
        # error instead of a second primary card.
        Index(
            ONE_PRIMARY_INDEX,
            "customer_id",
            unique=True,
            postgresql_where=text(_ACTIVE_PRIMARY),
            sqlite_where=text(_ACTIVE_PRIMARY),
        ),
    )

    id: str = Field(default_factory=lambda: new_id("pm"), primary_key=True, max_length=40)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=40)
    provider_ref: str = Field(max_length=255)
    brand: str = Field(max_length=40)
    last4: str = Field(max_length=4)
    exp_month: int
    exp_year: int
    is_primary: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Removed methods are kept so past orders still name the card they used.
    removed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

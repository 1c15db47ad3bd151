"""Cards a customer keeps on file (only the provider's reference and display data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow

__all__ = ["PaymentMethod"]


class PaymentMethod(SQLModel, table=True):
    __tablename__ = "payment_methods"

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

"""Who is who: partners, their customers, their staff and the staff's API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow

__all__ = ["ApiToken", "Customer", "Partner", "PartnerRole", "User"]


class PartnerRole(StrEnum):
    PARTNER_OWNER = "PARTNER_OWNER"
    PARTNER_FINANCE_ADMIN = "PARTNER_FINANCE_ADMIN"
    PARTNER_ADMIN = "PARTNER_ADMIN"

    @property
    def may_bill(self) -> bool:
        """Partner Administrators cannot manage billing (see the product guide)."""
        return self is not PartnerRole.PARTNER_ADMIN


class Partner(SQLModel, table=True):
    __tablename__ = "partners"

    id: str = Field(default_factory=lambda: new_id("ptn"), primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: str = Field(default_factory=lambda: new_id("cst"), primary_key=True, max_length=40)
    partner_id: str = Field(foreign_key="partners.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    # The payment provider's customer (a Stripe Customer id), made on first need.
    provider_customer_ref: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=40)
    partner_id: str = Field(foreign_key="partners.id", index=True, max_length=40)
    email: str = Field(sa_column=Column(String(320), unique=True, nullable=False))
    role: PartnerRole = Field(sa_column=Column(String(40), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ApiToken(SQLModel, table=True):
    """A bearer token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: str = Field(default_factory=lambda: new_id("tok"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    # The first characters, so a person can tell their tokens apart.
    display_prefix: str = Field(max_length=16)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # None: never expires.
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Written in batches by auth.usage, not on every request: accurate to its flush interval.
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

"""The plan catalogue and the plans customers hold (products)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, String
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow

__all__ = ["BillingInterval", "Plan", "PlanKind", "Product"]


class PlanKind(StrEnum):
    BACKUP = "BACKUP"
    CLOUD_STORAGE = "CLOUD_STORAGE"


class BillingInterval(StrEnum):
    MONTHLY = "MONTHLY"
    YEARLY = "YEARLY"


class Plan(SQLModel, table=True):
    """A catalogue entry; prices are per license per interval, in minor units."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("monthly_price_minor > 0 AND yearly_price_minor > 0", name="plan_prices_positive"),
    )

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: PlanKind = Field(sa_column=Column(String(20), nullable=False))
    # Cloud storage per license; None for backup plans.
    storage_gb: int | None = None
    monthly_price_minor: int
    yearly_price_minor: int
    currency: str = Field(default="USD", max_length=3)
    sort_order: int = 0
    active: bool = True

    def price_minor(self, interval: BillingInterval) -> int:
        return self.monthly_price_minor if interval is BillingInterval.MONTHLY else self.yearly_price_minor


class Product(SQLModel, table=True):
    """A plan a customer holds. Its billing periods run from ``period_anchor``
    in steps of one interval, so the current period is always derivable."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("assigned_licenses >= 0 AND total_licenses >= assigned_licenses", name="product_licenses"),
    )

    id: str = Field(default_factory=lambda: new_id("prd"), primary_key=True, max_length=40)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=40)
    plan_id: str = Field(foreign_key="plans.id", max_length=64)
    plan_kind: PlanKind = Field(sa_column=Column(String(20), nullable=False))
    billing_interval: BillingInterval = Field(sa_column=Column(String(10), nullable=False))
    total_licenses: int
    assigned_licenses: int = 0
    period_anchor: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

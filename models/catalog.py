"""The plan catalogue and the plans customers hold (products)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Column, Index, Integer, String, false, text
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow

__all__ = ["BillingInterval", "Plan", "PlanKind", "Product", "ProductStatus"]


class PlanKind(StrEnum):
    BACKUP = "BACKUP"
    CLOUD_STORAGE = "CLOUD_STORAGE"


class BillingInterval(StrEnum):
    MONTHLY = "MONTHLY"
    YEARLY = "YEARLY"


class ProductStatus(StrEnum):
    """Where a product's billing stands (see docs/billing.md)."""

    ACTIVE = "ACTIVE"  # its current period is paid
    PAST_DUE = "PAST_DUE"  # the period after it is not paid yet; renewal is retried
    CANCELED = "CANCELED"  # renews no more


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
    """A plan a customer holds, billed one period at a time.

    ``current_period_start``/``current_period_end`` is the last paid period: it
    advances only when the next one is paid (a RENEWAL order). Periods are whole
    intervals counted from ``period_anchor`` (the billing cycle anchor), so
    month-end clamping never drifts (Jan 31 → Feb 28 → Mar 31).
    """

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("assigned_licenses >= 0 AND total_licenses >= assigned_licenses", name="product_licenses"),
        CheckConstraint(
            "status IN ('ACTIVE', 'PAST_DUE', 'CANCELED') AND renewal_attempts >= 0 "
            "AND (scheduled_licenses IS NULL OR scheduled_licenses >= 1)",
            name="product_renewal",
        ),
        # The renewal pass: products whose next attempt is due.
        Index("products_renewal_due", "next_renewal_at"),
    )

    id: str = Field(default_factory=lambda: new_id("prd"), primary_key=True, max_length=40)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=40)
    plan_id: str = Field(foreign_key="plans.id", max_length=64)
    plan_kind: PlanKind = Field(sa_column=Column(String(20), nullable=False))
    billing_interval: BillingInterval = Field(sa_column=Column(String(10), nullable=False))
    total_licenses: int
    assigned_licenses: int = 0
    period_anchor: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    current_period_start: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    current_period_end: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # Server defaults too, so rows written by a version that predates renewals are valid.
    status: ProductStatus = Field(
        default=ProductStatus.ACTIVE,
        sa_column=Column(String(10), nullable=False, server_default=text("'ACTIVE'")),
    )
    cancel_at_period_end: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # Total licenses from the next period; None: unchanged.
    scheduled_licenses: int | None = None
    # Failed attempts to pay the period after the current one (0 when none failed).
    renewal_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))
    # When the renewal pass next charges (or cancels) it: the period end, then
    # each retry; None once canceled.
    next_renewal_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

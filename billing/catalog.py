"""The plan catalogue every partner buys from, and the plans customers hold
(products)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from billing.customers import CustomerView, customer_with, split_customer
from billing.periods import BillingPeriod
from models import BillingInterval, Plan, PlanKind, ProductStatus
from models.database import Connection, Query, Row, any_of
from models.tables import customers, plans, products

__all__ = [
    "DEFAULT_PLANS",
    "PRODUCT_WITH_PLAN",
    "PlanView",
    "ProductView",
    "active_plans",
    "customer_products",
    "ensure_catalog",
    "plans_by_id",
    "product_of",
    "product_view",
    "products_by_id",
    "storage_product_of",
]


@dataclass(frozen=True, slots=True)
class PlanView:
    id: str
    name: str
    kind: PlanKind
    # Cloud storage per license; None for backup plans.
    storage_gb: int | None
    monthly_price_minor: int
    yearly_price_minor: int
    currency: str
    active: bool

    def price_minor(self, interval: BillingInterval) -> int:
        return self.monthly_price_minor if interval is BillingInterval.MONTHLY else self.yearly_price_minor


@dataclass(frozen=True, slots=True)
class ProductView:
    """A plan a customer holds, with the plan (a product is priced by it)."""

    id: str
    customer_id: str
    billing_interval: BillingInterval
    total_licenses: int
    assigned_licenses: int
    period_anchor: datetime
    # The last paid period (see models.catalog.Product).
    current_period_start: datetime
    current_period_end: datetime
    status: ProductStatus
    cancel_at_period_end: bool
    scheduled_licenses: int | None
    renewal_attempts: int
    next_renewal_at: datetime | None
    plan: PlanView

    @property
    def available_licenses(self) -> int:
        return self.total_licenses - self.assigned_licenses

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod(self.current_period_start, self.current_period_end)

    @property
    def renews_at(self) -> datetime | None:
        """When it is next charged: the period end, or the next retry while
        past due; None when canceled or set to cancel."""
        if self.status is ProductStatus.CANCELED or self.cancel_at_period_end:
            return None
        return self.next_renewal_at


_PLAN = (
    plans.c.id,
    plans.c.name,
    plans.c.kind,
    plans.c.storage_gb,
    plans.c.monthly_price_minor,
    plans.c.yearly_price_minor,
    plans.c.currency,
    plans.c.active,
)
_PRODUCT = (
    products.c.id,
    products.c.customer_id,
    products.c.billing_interval,
    products.c.total_licenses,
    products.c.assigned_licenses,
    products.c.period_anchor,
    products.c.current_period_start,
    products.c.current_period_end,
    products.c.status,
    products.c.cancel_at_period_end,
    products.c.scheduled_licenses,
    products.c.renewal_attempts,
    products.c.next_renewal_at,
)
_ACTIVE_PLANS = Query(select(*_PLAN).where(plans.c.active.is_(True)).order_by(plans.c.sort_order, plans.c.id))
_PLANS_BY_ID = Query(select(*_PLAN).where(any_of(plans.c.id, "ids")))
_WITH_PLAN = select(*_PRODUCT, *_PLAN).select_from(products.join(plans))
PRODUCT_WITH_PLAN = _WITH_PLAN
"""``SELECT`` a product's columns and its plan's (rows for :func:`product_view`)."""
_PRODUCT_OF = Query(
    _WITH_PLAN.where(products.c.id == bindparam("id"), products.c.customer_id == bindparam("customer_id"))
)
_PRODUCTS_BY_ID = Query(_WITH_PLAN.where(any_of(products.c.id, "ids")))
_CUSTOMER_PRODUCTS = Query(
    customer_with((*_PRODUCT, *_PLAN), products.join(plans), products.c.customer_id == customers.c.id).order_by(
        products.c.created_at, products.c.id
    )
)
_STORAGE_PRODUCT_OF = Query(
    _WITH_PLAN.where(
        products.c.customer_id == bindparam("customer_id"), products.c.plan_kind == PlanKind.CLOUD_STORAGE.value
    )
)


def _plan(row: Row) -> PlanView:
    id_, name, kind, storage_gb, monthly, yearly, currency, active = row
    return PlanView(id_, name, PlanKind(kind), storage_gb, monthly, yearly, currency, bool(active))


_PRODUCT_WIDTH = len(_PRODUCT)


def product_view(row: Row) -> ProductView:
    """A product from a row of its columns followed by its plan's."""
    (id_, customer_id, interval, total, assigned, anchor, start, end, status, cancel, scheduled, attempts, next_at) = (
        row[:_PRODUCT_WIDTH]
    )
    return ProductView(
        id=id_,
        customer_id=customer_id,
        billing_interval=BillingInterval(interval),
        total_licenses=total,
        assigned_licenses=assigned,
        period_anchor=anchor,
        current_period_start=start,
        current_period_end=end,
        status=ProductStatus(status),
        cancel_at_period_end=bool(cancel),
        scheduled_licenses=scheduled,
        renewal_attempts=attempts,
        next_renewal_at=next_at,
        plan=_plan(row[_PRODUCT_WIDTH:]),
    )


async def active_plans(conn: Connection) -> list[PlanView]:
    return [_plan(row) for row in await conn.all(_ACTIVE_PLANS)]


async def plans_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, PlanView]:
    return {row[0]: _plan(row) for row in await conn.all(_PLANS_BY_ID, ids=list(ids))}


async def customer_products(
    conn: Connection, partner_id: str, customer_id: str
) -> tuple[CustomerView | None, list[ProductView]]:
    """The partner's customer (None: not theirs) and its products, oldest
    first, in one statement."""
    customer, rows = split_customer(await conn.all(_CUSTOMER_PRODUCTS, partner_id=partner_id, customer_id=customer_id))
    return customer, [product_view(row) for row in rows]


async def product_of(conn: Connection, customer_id: str, product_id: str) -> ProductView | None:
    row = await conn.first(_PRODUCT_OF, customer_id=customer_id, id=product_id)
    return product_view(row) if row else None


async def products_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, ProductView]:
    """Products by id, whoever holds them: the caller checks the holder."""
    return {row[0]: product_view(row) for row in await conn.all(_PRODUCTS_BY_ID, ids=list(ids))}


async def storage_product_of(conn: Connection, customer_id: str) -> ProductView | None:
    """The customer's cloud-storage product; a customer holds at most one."""
    row = await conn.first(_STORAGE_PRODUCT_OF, customer_id=customer_id)
    return product_view(row) if row else None


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan(
        id="plan_backup_essentials",
        name="Backup Essentials",
        kind=PlanKind.BACKUP,
        monthly_price_minor=400,
        yearly_price_minor=4000,
        sort_order=10,
    ),
    Plan(
        id="plan_backup_professional",
        name="Backup Professional",
        kind=PlanKind.BACKUP,
        monthly_price_minor=750,
        yearly_price_minor=7500,
        sort_order=20,
    ),
    Plan(
        id="plan_backup_enterprise",
        name="Backup Enterprise",
        kind=PlanKind.BACKUP,
        monthly_price_minor=1200,
        yearly_price_minor=12000,
        sort_order=30,
    ),
    Plan(
        id="plan_storage_250gb",
        name="Cloud Storage 250 GB",
        kind=PlanKind.CLOUD_STORAGE,
        storage_gb=250,
        monthly_price_minor=250,
        yearly_price_minor=2500,
        sort_order=110,
    ),
    Plan(
        id="plan_storage_1tb",
        name="Cloud Storage 1 TB",
        kind=PlanKind.CLOUD_STORAGE,
        storage_gb=1024,
        monthly_price_minor=800,
        yearly_price_minor=8000,
        sort_order=120,
    ),
    Plan(
        id="plan_storage_5tb",
        name="Cloud Storage 5 TB",
        kind=PlanKind.CLOUD_STORAGE,
        storage_gb=5120,
        monthly_price_minor=3000,
        yearly_price_minor=30000,
        sort_order=130,
    ),
)


async def ensure_catalog(session: AsyncSession) -> None:
    """Insert the default plans that are missing; existing rows are left as
    they are. (Run under the schema lock at startup, through the ORM.)"""
    from sqlmodel import select as orm_select

    existing = set((await session.exec(orm_select(col(Plan.id)))).all())
    for plan in DEFAULT_PLANS:
        if plan.id not in existing:
            session.add(Plan.model_validate(plan.model_dump()))

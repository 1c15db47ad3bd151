"""The plan catalogue every partner buys from."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Plan, PlanKind

__all__ = ["DEFAULT_PLANS", "ensure_catalog", "list_plans"]

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
    """Insert the default plans that are missing; existing rows are left as they are."""
    existing = set((await session.exec(select(Plan.id))).all())
    for plan in DEFAULT_PLANS:
        if plan.id not in existing:
            session.add(Plan.model_validate(plan.model_dump()))


async def list_plans(session: AsyncSession) -> list[Plan]:
    rows = await session.exec(select(Plan).where(col(Plan.active)).order_by(col(Plan.sort_order), col(Plan.id)))
    return list(rows.all())

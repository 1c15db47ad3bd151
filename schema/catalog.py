"""Plans (the catalogue) and products (plans a customer holds)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing.periods import current_period
from models import BillingInterval, PlanKind
from models import Plan as PlanRow
from models import Product as ProductRow
from schema.context import Info
from schema.money import Money

__all__ = ["Plan", "Product"]


@strawberry.type(description="A catalogue entry that can be bought.")
class Plan:
    row: strawberry.Private[PlanRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def kind(self) -> PlanKind:
        return PlanKind(self.row.kind)

    @strawberry.field(description="Cloud storage per license, in GB; null for backup plans.")
    def storage_gb(self) -> int | None:
        return self.row.storage_gb

    @strawberry.field(description="Price per license per interval.")
    def price(self, interval: BillingInterval) -> Money:
        return Money.of(self.row.price_minor(interval), self.row.currency)


@strawberry.type(description="A plan a customer holds (the Products page).")
class Product:
    row: strawberry.Private[ProductRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    async def plan(self, info: Info) -> Plan:
        plan = await info.context.loaders.plan_by_id.load(self.row.plan_id)
        assert plan is not None
        return Plan(row=plan)

    @strawberry.field
    def billing_interval(self) -> BillingInterval:
        return BillingInterval(self.row.billing_interval)

    @strawberry.field
    def total_licenses(self) -> int:
        return self.row.total_licenses

    @strawberry.field
    def assigned_licenses(self) -> int:
        return self.row.assigned_licenses

    @strawberry.field
    def available_licenses(self) -> int:
        return self.row.total_licenses - self.row.assigned_licenses

    @strawberry.field(description="Total cloud storage (per-license storage × licenses); null for backup plans.")
    async def storage_gb(self, info: Info) -> int | None:
        plan = await info.context.loaders.plan_by_id.load(self.row.plan_id)
        if plan is None or plan.storage_gb is None:
            return None
        return plan.storage_gb * self.row.total_licenses

    @strawberry.field
    def current_period_end(self, info: Info) -> datetime:
        interval = BillingInterval(self.row.billing_interval)
        return current_period(self.row.period_anchor, interval, info.context.services.clock()).end

"""Plans (the catalogue) and products (plans a customer holds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from billing.catalog import PlanView, ProductView
from billing.periods import current_period
from models import BillingInterval, PlanKind
from schema.money import Money
from schema.node import Node

__all__ = ["Plan", "Product"]


@strawberry.type(description="A catalogue entry that can be bought (`plan_…`); the same catalogue for every partner.")
class Plan(Node):
    name: str = strawberry.field(
        description='What the plan is called on invoices and in the shop, e.g. "Backup Essentials".'
    )
    kind: PlanKind = strawberry.field(description="Backup licenses or cloud storage.")
    storage_gb: int | None = strawberry.field(description="Cloud storage per license, in GB; null for backup plans.")
    view: strawberry.Private[PlanView]

    @classmethod
    def of(cls, view: PlanView) -> Plan:
        return cls(id=strawberry.ID(view.id), name=view.name, kind=view.kind, storage_gb=view.storage_gb, view=view)

    @strawberry.field(description="Price of one license for one whole interval, before any proration.")
    def price(
        self,
        interval: Annotated[BillingInterval, strawberry.argument(description="Monthly or yearly billing.")],
    ) -> Money:
        return Money.of(self.view.price_minor(interval), self.view.currency)


@strawberry.type(
    description="A plan a customer holds (the Products page, `prd_…`). A customer holds at most one cloud-storage "
    "product."
)
class Product(Node):
    plan: Plan = strawberry.field(description="The plan held, which prices new licenses.")
    billing_interval: BillingInterval = strawberry.field(description="How often the product is billed.")
    total_licenses: int = strawberry.field(description="Licenses paid for, at least 1.")
    assigned_licenses: int = strawberry.field(description="Licenses in use (assigned to devices or users).")
    available_licenses: int = strawberry.field(description="`totalLicenses` − `assignedLicenses`.")
    storage_gb: int | None = strawberry.field(
        description="Total cloud storage in GB (per-license storage × licenses); null for backup plans."
    )
    current_period_end: datetime = strawberry.field(
        description="When the current billing period ends; licenses bought now are charged pro rata until then."
    )

    @classmethod
    def of(cls, view: ProductView, *, now: datetime) -> Product:
        plan = view.plan
        return cls(
            id=strawberry.ID(view.id),
            plan=Plan.of(plan),
            billing_interval=view.billing_interval,
            total_licenses=view.total_licenses,
            assigned_licenses=view.assigned_licenses,
            available_licenses=view.available_licenses,
            storage_gb=plan.storage_gb * view.total_licenses if plan.storage_gb is not None else None,
            current_period_end=current_period(view.period_anchor, view.billing_interval, now).end,
        )

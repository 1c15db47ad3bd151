"""Plans (the catalogue) and products (plans a customer holds)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing.catalog import PlanView, ProductView
from billing.periods import current_period
from models import BillingInterval, PlanKind
from schema.money import Money

__all__ = ["GRAPHQL_INT_MAX", "Plan", "Product"]

GRAPHQL_INT_MAX = 2**31 - 1


@strawberry.type(description="A catalogue entry that can be bought.")
class Plan:
    id: strawberry.ID
    name: str
    kind: PlanKind
    storage_gb: int | None = strawberry.field(description="Cloud storage per license, in GB; null for backup plans.")
    view: strawberry.Private[PlanView]

    @classmethod
    def of(cls, view: PlanView) -> Plan:
        return cls(id=strawberry.ID(view.id), name=view.name, kind=view.kind, storage_gb=view.storage_gb, view=view)

    @strawberry.field(description="Price per license per interval.")
    def price(self, interval: BillingInterval) -> Money:
        return Money.of(self.view.price_minor(interval), self.view.currency)


@strawberry.type(description="A plan a customer holds (the Products page).")
class Product:
    id: strawberry.ID
    plan: Plan
    billing_interval: BillingInterval
    total_licenses: int
    assigned_licenses: int
    available_licenses: int
    storage_gb: int | None = strawberry.field(
        description="Total cloud storage (per-license storage × licenses); null for backup plans."
    )
    current_period_end: datetime

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
            storage_gb=_storage_gb(plan.storage_gb, view.total_licenses),
            current_period_end=current_period(view.period_anchor, view.billing_interval, now).end,
        )


def _storage_gb(per_license: int | None, licenses: int) -> int | None:
    """Total storage. Purchases keep a product within 100,000 licenses, which
    fits GraphQL's Int; a product stored with more (made outside the API)
    reads as Int's maximum rather than failing the whole query."""
    if per_license is None:
        return None
    return min(per_license * licenses, GRAPHQL_INT_MAX)

"""Plans (the catalogue) and products (plans a customer holds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from billing.catalog import PlanView, ProductView
from models import BillingInterval, PlanKind, ProductStatus
from schema.money import Money
from schema.node import Node

__all__ = ["GRAPHQL_INT_MAX", "Plan", "Product"]

GRAPHQL_INT_MAX = 2**31 - 1


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
    description="A plan a customer holds (the Products page, `prd_…`), billed each period until canceled. A "
    "customer holds at most one cloud-storage product."
)
class Product(Node):
    plan: Plan = strawberry.field(description="The plan held, which prices new licenses and renewals.")
    billing_interval: BillingInterval = strawberry.field(description="How often the product is billed.")
    total_licenses: int = strawberry.field(description="Licenses paid for, at least 1.")
    assigned_licenses: int = strawberry.field(description="Licenses in use (assigned to devices or users).")
    available_licenses: int = strawberry.field(description="`totalLicenses` − `assignedLicenses`.")
    storage_gb: int | None = strawberry.field(
        description="Total cloud storage in GB (per-license storage × licenses); null for backup plans."
    )
    status: ProductStatus = strawberry.field(description="Whether the product is paid for and renewing.")
    current_period_start: datetime = strawberry.field(description="Start of the last paid period.")
    current_period_end: datetime = strawberry.field(
        description="End of the last paid period; it moves on only when the next period is paid. Licenses bought "
        "now are charged pro rata until then."
    )
    renews_at: datetime | None = strawberry.field(
        description="When the next period is charged (while PAST_DUE: the next retry); "
        "null when canceled or set to cancel."
    )
    cancel_at_period_end: bool = strawberry.field(
        description="Set to cancel when the current period ends (cancelProduct; resumeProduct undoes it)."
    )
    scheduled_licenses: int | None = strawberry.field(
        description="Total licenses from the next period (scheduleLicenseChange); null: unchanged."
    )

    @classmethod
    def of(cls, view: ProductView) -> Product:
        plan = view.plan
        return cls(
            id=strawberry.ID(view.id),
            plan=Plan.of(plan),
            billing_interval=view.billing_interval,
            total_licenses=view.total_licenses,
            assigned_licenses=view.assigned_licenses,
            available_licenses=view.available_licenses,
            storage_gb=_storage_gb(plan.storage_gb, view.total_licenses),
            status=view.status,
            current_period_start=view.current_period_start,
            current_period_end=view.current_period_end,
            renews_at=view.renews_at,
            cancel_at_period_end=view.cancel_at_period_end,
            scheduled_licenses=view.scheduled_licenses,
        )


def _storage_gb(per_license: int | None, licenses: int) -> int | None:
    """Total storage. Purchases keep a product within 100,000 licenses, which
    fits GraphQL's Int; a product stored with more (made outside the API)
    reads as Int's maximum rather than failing the whole query."""
    if per_license is None:
        return None
    return min(per_license * licenses, GRAPHQL_INT_MAX)

"""The contract's enums, shared with the models so values never drift."""

from __future__ import annotations

import strawberry

from models import BillingInterval, OrderKind, OrderStatus, PartnerRole, PlanKind, ProductStatus

__all__ = ["BillingInterval", "OrderKind", "OrderStatus", "PartnerRole", "PlanKind", "ProductStatus"]

strawberry.enum(PartnerRole)
strawberry.enum(BillingInterval)
strawberry.enum(PlanKind)
strawberry.enum(OrderKind)
strawberry.enum(OrderStatus)
strawberry.enum(ProductStatus)

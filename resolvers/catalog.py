from __future__ import annotations

from billing.catalog import active_plans, customer_products
from resolvers.common import caller_and_customer, caller_customer_and
from schema.arguments import ActingCustomer
from schema.catalog import Plan, Product
from schema.context import Info

__all__ = ["catalog", "products"]


async def catalog(info: Info, acting_customer: ActingCustomer) -> list[Plan]:
    await caller_and_customer(info, acting_customer, billing=False)
    return [Plan.of(plan) for plan in await active_plans(info.context.db)]


async def products(info: Info, acting_customer: ActingCustomer) -> list[Product]:
    _, products = await caller_customer_and(info, acting_customer, customer_products, billing=False)
    return [Product.of(product) for product in products]

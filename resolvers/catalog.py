from __future__ import annotations

import strawberry
from sqlmodel import col, select

from billing.catalog import list_plans
from models import Product as ProductRow
from resolvers.common import caller_and_customer
from schema.catalog import Plan, Product
from schema.context import Info

__all__ = ["catalog", "products"]


async def catalog(info: Info, acting_customer: strawberry.ID) -> list[Plan]:
    await caller_and_customer(info, acting_customer, billing=False)
    async with info.context.services.db.read() as session:
        return [Plan(row=plan) for plan in await list_plans(session)]


async def products(info: Info, acting_customer: strawberry.ID) -> list[Product]:
    _, customer = await caller_and_customer(info, acting_customer, billing=False)
    async with info.context.services.db.read() as session:
        rows = await session.exec(
            select(ProductRow)
            .where(ProductRow.customer_id == customer.id)
            .order_by(col(ProductRow.created_at), col(ProductRow.id))
        )
        return [Product(row=row) for row in rows.all()]

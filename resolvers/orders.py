from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

import strawberry
from sqlmodel import col, or_, select

from billing import orders as domain
from billing.errors import BadUserInput, NotFound, UserErrors
from models import Order as OrderRow
from models import OrderStatus
from resolvers.common import caller_and_customer
from schema.context import Info
from schema.inputs import BuyLicensesInput, UpgradeStorageInput
from schema.orders import Order, OrderConnection, OrderEdge, OrderSummary
from schema.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from schema.payloads import OrderPayload, UserError

__all__ = [
    "buy_licenses",
    "license_purchase_summary",
    "order",
    "orders",
    "storage_upgrade_summary",
    "upgrade_storage",
]


def _license_request(input: BuyLicensesInput) -> domain.LicensePurchase:
    return domain.LicensePurchase(
        product_id=input.product_id,
        quantity=input.quantity,
        payment_method_id=input.payment_method_id,
        idempotency_key=input.idempotency_key,
    )


def _storage_request(input: UpgradeStorageInput) -> domain.StorageUpgrade:
    return domain.StorageUpgrade(
        plan_id=input.plan_id,
        licenses=input.licenses,
        billing_interval=input.billing_interval,
        payment_method_id=input.payment_method_id,
        idempotency_key=input.idempotency_key,
    )


async def _summary(info: Info, acting_customer: str, request: domain.Request) -> OrderSummary:
    """Priced exactly as the mutation will price it (errors are top-level here)."""
    _, customer = await caller_and_customer(info, acting_customer, billing=True)
    async with info.context.services.db.read() as session:
        quote = await domain.quote_for(session, customer, request, info.context.services)
    return OrderSummary.of_quote(quote)


async def license_purchase_summary(info: Info, acting_customer: strawberry.ID, input: BuyLicensesInput) -> OrderSummary:
    return await _summary(info, acting_customer, _license_request(input))


async def storage_upgrade_summary(
    info: Info, acting_customer: strawberry.ID, input: UpgradeStorageInput
) -> OrderSummary:
    return await _summary(info, acting_customer, _storage_request(input))


async def _payload(placing: Awaitable[domain.OrderResult]) -> OrderPayload:
    """The order (with a declined payment's userErrors), or the userErrors that
    explain why no order was placed."""
    try:
        result = await placing
    except UserErrors as errors:
        return OrderPayload(order=None, user_errors=[UserError.of(e) for e in errors.errors])
    return OrderPayload(order=Order(row=result.order), user_errors=[UserError.of(e) for e in result.user_errors])


async def buy_licenses(info: Info, acting_customer: strawberry.ID, input: BuyLicensesInput) -> OrderPayload:
    return await _payload(
        domain.buy_licenses(info.context.services, info.context.caller(), acting_customer, _license_request(input))
    )


async def upgrade_storage(info: Info, acting_customer: strawberry.ID, input: UpgradeStorageInput) -> OrderPayload:
    return await _payload(
        domain.upgrade_storage(info.context.services, info.context.caller(), acting_customer, _storage_request(input))
    )


async def order(info: Info, acting_customer: strawberry.ID, id: strawberry.ID) -> Order | None:
    """The order, or a NOT_FOUND error: an id the caller may not see names nothing."""
    _, customer = await caller_and_customer(info, acting_customer, billing=True)
    async with info.context.services.db.read() as session:
        row = await session.get(OrderRow, id) if len(id) <= 64 else None
    if row is None or row.customer_id != customer.id:
        raise NotFound("No such order.")
    return Order(row=row)


async def orders(
    info: Info,
    acting_customer: strawberry.ID,
    first: int | None = None,
    after: str | None = None,
    status: OrderStatus | None = None,
) -> OrderConnection:
    """The customer's orders, newest first."""
    _, customer = await caller_and_customer(info, acting_customer, billing=True)
    limit = page_size(first, info.context.settings.max_page_size)
    query = select(OrderRow).where(OrderRow.customer_id == customer.id)
    if status is not None:
        query = query.where(OrderRow.status == status)
    if after is not None:
        created, order_id = decode_cursor(after, "ord", 2)
        try:
            created_at = datetime.fromisoformat(str(created))
        except ValueError:
            created_at = None
        if created_at is None or created_at.tzinfo is None:
            raise BadUserInput("Malformed cursor.")
        query = query.where(
            or_(
                col(OrderRow.created_at) < created_at,
                (col(OrderRow.created_at) == created_at) & (col(OrderRow.id) < order_id),
            )
        )
    query = query.order_by(col(OrderRow.created_at).desc(), col(OrderRow.id).desc()).limit(limit + 1)
    async with info.context.services.db.read() as session:
        rows = list((await session.exec(query)).all())
    edges = [
        OrderEdge(cursor=encode_cursor("ord", row.created_at.isoformat(), row.id), node=Order(row=row))
        for row in rows[:limit]
    ]
    return OrderConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(rows) > limit, end_cursor=edges[-1].cursor if edges else None),
    )

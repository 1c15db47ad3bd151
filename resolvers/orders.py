from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated

import strawberry

from billing import purchases
from billing.access import plausible_id
from billing.errors import BadUserInput, NotFound, UserErrors
from billing.orders import order_of, orders_page
from models import OrderStatus
from resolvers.common import caller_and_customer
from schema.arguments import ActingCustomer, After, First, OrderId
from schema.context import Info
from schema.cursors import CursorCodec
from schema.inputs import BuyLicensesInput, UpgradeStorageInput
from schema.orders import Order, OrderConnection, OrderEdge, OrderSummary
from schema.pagination import page_info, page_size
from schema.payloads import OrderPayload, UserError

__all__ = [
    "buy_licenses",
    "license_purchase_summary",
    "order",
    "orders",
    "storage_upgrade_summary",
    "upgrade_storage",
]


LicensesInput = Annotated[BuyLicensesInput, strawberry.argument(description="The licenses to buy.")]
StorageInput = Annotated[UpgradeStorageInput, strawberry.argument(description="The storage plan to buy or move to.")]


def _license_request(input: LicensesInput) -> purchases.LicensePurchase:
    return purchases.LicensePurchase(
        product_id=input.product_id,
        quantity=input.quantity,
        payment_method_id=input.payment_method_id,
        idempotency_key=input.idempotency_key,
    )


def _storage_request(input: StorageInput) -> purchases.StorageUpgrade:
    return purchases.StorageUpgrade(
        plan_id=input.plan_id,
        licenses=input.licenses,
        billing_interval=input.billing_interval,
        payment_method_id=input.payment_method_id,
        idempotency_key=input.idempotency_key,
    )


async def _summary(info: Info, acting_customer: str, request: purchases.Request) -> OrderSummary:
    """Priced exactly as the mutation will price it (errors are top-level here)."""
    _, customer = await caller_and_customer(info, acting_customer, billing=True)
    quote = await purchases.quote_for(info.context.services, info.context.db, customer, request)
    return OrderSummary.of_quote(quote)


async def license_purchase_summary(info: Info, acting_customer: ActingCustomer, input: LicensesInput) -> OrderSummary:
    return await _summary(info, acting_customer, _license_request(input))


async def storage_upgrade_summary(info: Info, acting_customer: ActingCustomer, input: StorageInput) -> OrderSummary:
    return await _summary(info, acting_customer, _storage_request(input))


async def _payload(placing: Awaitable[purchases.OrderResult]) -> OrderPayload:
    """The order (with a declined payment's userErrors), or the userErrors that
    explain why no order was placed."""
    try:
        result = await placing
    except UserErrors as errors:
        return OrderPayload(order=None, user_errors=[UserError.of(e) for e in errors.errors])
    return OrderPayload(order=Order.of(result.order), user_errors=[UserError.of(e) for e in result.user_errors])


async def buy_licenses(info: Info, acting_customer: ActingCustomer, input: LicensesInput) -> OrderPayload:
    context = info.context
    return await _payload(
        purchases.buy_licenses(context.services, context.db, context.caller(), acting_customer, _license_request(input))
    )


async def upgrade_storage(info: Info, acting_customer: ActingCustomer, input: StorageInput) -> OrderPayload:
    context = info.context
    return await _payload(
        purchases.upgrade_storage(
            context.services, context.db, context.caller(), acting_customer, _storage_request(input)
        )
    )


async def order(info: Info, acting_customer: ActingCustomer, id: OrderId) -> Order | None:
    """The order, or a NOT_FOUND error: an id the caller may not see names nothing."""
    _, customer = await caller_and_customer(info, acting_customer, billing=True)
    view = await order_of(info.context.db, customer.id, id) if plausible_id(id) else None
    if view is None:
        raise NotFound("No such order.")
    return Order.of(view)


def _order_key(cursors: CursorCodec, customer_id: str, cursor: str) -> tuple[datetime, str]:
    created, order_id = cursors.decode(cursor, "ord", customer_id, 2)
    try:
        created_at = datetime.fromisoformat(str(created))
    except ValueError:
        created_at = None
    if created_at is None or created_at.tzinfo is None or not isinstance(order_id, str):
        raise BadUserInput("Malformed cursor.")
    return created_at, order_id


async def orders(
    info: Info,
    acting_customer: ActingCustomer,
    first: First = None,
    after: After = None,
    status: Annotated[
        OrderStatus | None, strawberry.argument(description="Only orders in this status; omitted: all.")
    ] = None,
) -> OrderConnection:
    """The customer's orders, newest first."""
    _, customer = await caller_and_customer(info, acting_customer, billing=True)
    limit = page_size(first, info.context.settings.max_page_size)
    cursors = info.context.cursors
    key = _order_key(cursors, customer.id, after) if after is not None else None
    rows = await orders_page(info.context.db, customer.id, status=status, after=key, limit=limit + 1)
    edges = [
        OrderEdge(cursor=cursors.encode("ord", customer.id, row.created_at.isoformat(), row.id), node=Order.of(row))
        for row in rows[:limit]
    ]
    return OrderConnection(
        edges=edges,
        page_info=page_info([edge.cursor for edge in edges], has_next_page=len(rows) > limit, after=after),
    )

"""The Subscription root's resolvers: order events from the hub, as the contract orders them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from typing import Annotated

import strawberry

from billing.access import plausible_id, require_billing
from billing.errors import NotFound
from billing.orders import OrderView, orders_by_id
from events.hub import Delivery
from events.log import EventFilter, latest_event
from models.database import Database
from resolvers.common import caller_and_customer
from schema.arguments import ActingCustomer, OptionalActingCustomer
from schema.context import Context, Info
from schema.cursors import CursorCodec
from schema.orders import OrderStatusEvent, decode_event_cursor
from subscriptions.live import LiveStream

__all__ = ["event_preparer", "order_status_changed", "payment_confirmation"]


def event_preparer(db: Database, cursors: CursorCodec) -> Callable[[Delivery], Awaitable[None]]:
    """The hub's ``prepare``: before a live event reaches its subscribers, read
    its order and build the event as the API shows it, once for all of them
    (so no subscriber waits on another's read)."""

    async def prepare(delivery: Delivery) -> None:
        event = delivery.event
        async with db.connection() as conn:
            order = (await orders_by_id(conn, [event.order_id]))[event.order_id]
        delivery.shared[OrderStatusEvent] = OrderStatusEvent.of(event, order, cursors, delivery.shared)

    return prepare


async def _as_graphql(context: Context, delivery: Delivery) -> OrderStatusEvent:
    """The event as the API shows it, with its order: read and built once per
    delivery, however many subscribers share it (a live one arrives built)."""
    building: OrderStatusEvent | asyncio.Future[OrderStatusEvent] | None = delivery.shared.get(OrderStatusEvent)
    if isinstance(building, OrderStatusEvent):
        return building
    if building is None:
        event, db = delivery.event, context.db

        async def build() -> OrderStatusEvent:
            order: OrderView = (await orders_by_id(db, [event.order_id]))[event.order_id]
            return OrderStatusEvent.of(event, order, context.cursors, delivery.shared)

        building = delivery.shared[OrderStatusEvent] = asyncio.ensure_future(build())
    # Shielded: one subscriber leaving must not cancel the read the others await.
    return await asyncio.shield(building)


# The resolvers check the caller before returning their stream, so a refusal
# is an `error` message rather than a first `next` carrying errors.


async def payment_confirmation(
    info: Info,
    acting_customer: ActingCustomer,
    order_id: Annotated[
        strawberry.ID, strawberry.argument(description="The order to watch (`ord_…`); another customer's is NOT_FOUND.")
    ],
) -> AsyncGenerator[OrderStatusEvent, None]:
    """The order's current status first, then each change; ends after a terminal status."""
    principal, customer = await caller_and_customer(info, acting_customer, billing=True)
    event_filter = EventFilter(partner_id=principal.partner_id, customer_id=customer.id, order_id=order_id)
    if not plausible_id(order_id) or await _latest(info, event_filter) is None:
        raise NotFound("No such order.")
    return _confirmation_stream(info, event_filter)


async def _latest(info: Info, event_filter: EventFilter) -> Delivery | None:
    assert event_filter.customer_id is not None and event_filter.order_id is not None
    event = await latest_event(
        info.context.db,
        partner_id=event_filter.partner_id,
        customer_id=event_filter.customer_id,
        order_id=event_filter.order_id,
    )
    return Delivery(event) if event else None


async def _confirmation_stream(info: Info, event_filter: EventFilter) -> AsyncGenerator[OrderStatusEvent, None]:
    hub = info.context.hub
    # Register before reading the current status, so a change committed in
    # between is queued rather than lost.
    async with hub.subscribe(event_filter) as subscriber:
        latest = await _latest(info, event_filter)
        assert latest is not None, "checked by payment_confirmation"
        yield await _as_graphql(info.context, latest)
        if latest.event.status.is_terminal:
            return
        async for delivery in subscriber.deliveries(after=latest.seq):
            yield await _as_graphql(info.context, delivery)
            if delivery.event.status.is_terminal:
                return


async def order_status_changed(
    info: Info,
    acting_customer: OptionalActingCustomer = None,
    after: Annotated[
        str | None,
        strawberry.argument(
            description="An event's `cursor`: first every stored event after it, in order, then live ones. "
            "Omitted: live events only."
        ),
    ] = None,
) -> AsyncIterable[OrderStatusEvent]:
    """Order events of one customer (or all the partner's); stored ones after
    ``after`` first, then live ones, with no gap and no repeat."""
    principal = info.context.caller()
    customer_id: str | None = None
    if acting_customer is not None:
        _, customer = await caller_and_customer(info, acting_customer, billing=True)
        customer_id = customer.id
    else:
        require_billing(principal)
    start = decode_event_cursor(info.context.cursors, principal.partner_id, after) if after is not None else None
    event_filter = EventFilter(partner_id=principal.partner_id, customer_id=customer_id)
    # The stream keeps the context, not ``info``: that holds the subscriber's
    # executor, which subscriptions.live replaces by one shared executor.
    context = info.context
    return LiveStream(context.hub, event_filter, start, lambda delivery: _as_graphql(context, delivery))

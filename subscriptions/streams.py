"""The Subscription root's resolvers: order events from the hub, as the contract orders them."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from billing.access import require_billing
from billing.errors import NotFound
from models import OrderStatus
from resolvers.common import caller_and_customer
from schema.context import Info
from schema.orders import OrderStatusEvent, decode_event_cursor
from subscriptions.hub import EventFilter, OrderUpdate

__all__ = ["order_status_changed", "payment_confirmation"]


def _as_graphql(update: OrderUpdate) -> OrderStatusEvent:
    return OrderStatusEvent.of(update.event, update.order)


# The resolvers check the caller before returning their stream, so a refusal
# is an `error` message rather than a first `next` carrying errors.


async def payment_confirmation(
    info: Info, acting_customer: strawberry.ID, order_id: strawberry.ID
) -> AsyncGenerator[OrderStatusEvent, None]:
    """The order's current status first, then each change; ends after a terminal status."""
    principal, customer = await caller_and_customer(info, acting_customer, billing=True)
    event_filter = EventFilter(partner_id=principal.partner_id, customer_id=customer.id, order_id=order_id)
    latest = await info.context.hub.latest_update(event_filter) if len(order_id) <= 64 else None
    if latest is None:
        raise NotFound("No such order.")
    return _confirmation_stream(info, event_filter)


async def _confirmation_stream(info: Info, event_filter: EventFilter) -> AsyncGenerator[OrderStatusEvent, None]:
    hub = info.context.hub
    # Register before reading the current status, so a change committed in
    # between is queued rather than lost.
    async with hub.subscribe(event_filter) as subscriber:
        latest = await hub.latest_update(event_filter)
        assert latest is not None, "checked by payment_confirmation"
        yield _as_graphql(latest)
        if OrderStatus(latest.event.status).is_terminal:
            return
        async for update in subscriber.updates(after=latest.seq):
            yield _as_graphql(update)
            if OrderStatus(update.event.status).is_terminal:
                return


async def order_status_changed(
    info: Info, acting_customer: strawberry.ID | None = None, after: str | None = None
) -> AsyncGenerator[OrderStatusEvent, None]:
    """Order events of one customer (or all the partner's); stored ones after
    ``after`` first, then live ones, with no gap and no repeat."""
    principal = info.context.caller()
    customer_id: str | None = None
    if acting_customer is not None:
        _, customer = await caller_and_customer(info, acting_customer, billing=True)
        customer_id = customer.id
    else:
        require_billing(principal)
    start = decode_event_cursor(after) if after is not None else None
    event_filter = EventFilter(partner_id=principal.partner_id, customer_id=customer_id)
    return _changes_stream(info, event_filter, start)


async def _changes_stream(
    info: Info, event_filter: EventFilter, start: int | None
) -> AsyncGenerator[OrderStatusEvent, None]:
    hub = info.context.hub
    async with hub.subscribe(event_filter) as subscriber:
        if start is None:
            # Live only: everything up to now is history.
            start = await hub.latest_seq()
        async for update in subscriber.updates(after=start):
            yield _as_graphql(update)

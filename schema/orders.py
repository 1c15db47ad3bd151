"""Orders, their summaries, and order status events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import strawberry

from billing.orders import OrderLineView, OrderView
from billing.quotes import Quote
from events.log import OrderEventRecord
from models import BillingInterval, OrderKind, OrderStatus
from schema.billing import PaymentMethod
from schema.context import Info
from schema.cursors import CursorCodec
from schema.money import Money
from schema.pagination import PageInfo

__all__ = [
    "Order",
    "OrderConnection",
    "OrderEdge",
    "OrderLine",
    "OrderStatusEvent",
    "OrderSummary",
    "decode_event_cursor",
    "event_cursor",
]


class _PricedLine(Protocol):
    """A quoted line (billing.quotes.QuoteLine) or a stored one (billing.orders.OrderLineView)."""

    @property
    def description(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price_minor(self) -> int: ...
    @property
    def amount_minor(self) -> int: ...


@strawberry.type
class OrderLine:
    description: str
    quantity: int
    unit_price: Money
    amount: Money

    @classmethod
    def of(cls, line: _PricedLine, currency: str) -> OrderLine:
        return cls(
            description=line.description,
            quantity=line.quantity,
            unit_price=Money.of(line.unit_price_minor, currency),
            amount=Money.of(line.amount_minor, currency),
        )


@strawberry.type(description="What an order charges; `total` is exactly the amount charged.")
class OrderSummary:
    lines: list[OrderLine]
    subtotal: Money
    total: Money
    billing_interval: BillingInterval

    @classmethod
    def of_quote(cls, quote: Quote) -> OrderSummary:
        currency = quote.currency
        return cls(
            lines=[OrderLine.of(line, currency) for line in quote.lines],
            subtotal=Money.of(quote.subtotal_minor, currency),
            total=Money.of(quote.total_minor, currency),
            billing_interval=quote.billing_interval,
        )


@strawberry.type
class Order:
    id: strawberry.ID
    kind: OrderKind
    status: OrderStatus
    total: Money
    failure_reason: str | None
    client_secret: str | None = strawberry.field(
        description="Set while REQUIRES_ACTION: pass it to Stripe.js to finish 3-D Secure."
    )
    created_at: datetime
    updated_at: datetime
    view: strawberry.Private[OrderView]

    @classmethod
    def of(cls, view: OrderView) -> Order:
        return cls(
            id=strawberry.ID(view.id),
            kind=view.kind,
            status=view.status,
            total=Money.of(view.total_minor, view.currency),
            failure_reason=view.failure_reason,
            client_secret=view.client_secret if view.status is OrderStatus.REQUIRES_ACTION else None,
            created_at=view.created_at,
            updated_at=view.updated_at,
            view=view,
        )

    @strawberry.field
    async def summary(self, info: Info) -> OrderSummary:
        lines: list[OrderLineView] = await info.context.loaders.order_lines.load(self.view.id)
        currency = self.view.currency
        return OrderSummary(
            lines=[OrderLine.of(line, currency) for line in lines],
            subtotal=Money.of(self.view.subtotal_minor, currency),
            total=self.total,
            billing_interval=self.view.billing_interval,
        )

    @strawberry.field
    async def payment_method(self, info: Info) -> PaymentMethod | None:
        if self.view.payment_method_id is None:
            return None
        method = await info.context.loaders.payment_methods.load(self.view.payment_method_id)
        return PaymentMethod.of(method) if method else None


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


def event_cursor(cursors: CursorCodec, partner_id: str, seq: int) -> str:
    """Sealed for the event's partner: opaque, stable, useless to another partner."""
    return cursors.encode("evt", partner_id, seq)


def decode_event_cursor(cursors: CursorCodec, partner_id: str, cursor: str) -> int:
    return cursors.decode_int(cursor, "evt", partner_id)


@strawberry.type(description="An order took a status. `cursor` resumes orderStatusChanged(after:).")
class OrderStatusEvent:
    order: Order
    status: OrderStatus
    occurred_at: datetime
    cursor: str
    # What is computed for this event once and shared by every subscriber
    # (see subscriptions.multiplex); None when nothing is shared.
    shared: strawberry.Private[dict[Any, Any] | None] = None

    @classmethod
    def of(
        cls, event: OrderEventRecord, order: OrderView, cursors: CursorCodec, shared: dict[Any, Any] | None = None
    ) -> OrderStatusEvent:
        return cls(
            order=Order.of(order),
            status=event.status,
            occurred_at=event.occurred_at,
            cursor=event_cursor(cursors, event.partner_id, event.seq),
            shared=shared,
        )

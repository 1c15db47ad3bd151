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
from schema.node import Node
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


@strawberry.type(description="One line of an order: what is bought (or credited) and for how much.")
class OrderLine:
    description: str = strawberry.field(
        description='Human-readable, e.g. "Backup Essentials: 3 licenses added, monthly, pro rata for 12 of 30 days '
        'until 2026-03-01".'
    )
    quantity: int = strawberry.field(description="Licenses on this line.")
    unit_price: Money = strawberry.field(
        description="Price per license on this line (after proration; negative for a credit)."
    )
    amount: Money = strawberry.field(description="`quantity` × `unitPrice`, exactly.")

    @classmethod
    def of(cls, line: _PricedLine, currency: str) -> OrderLine:
        return cls(
            description=line.description,
            quantity=line.quantity,
            unit_price=Money.of(line.unit_price_minor, currency),
            amount=Money.of(line.amount_minor, currency),
        )


@strawberry.type(
    description="What an order charges. A summary query returns exactly what the matching mutation then charges."
)
class OrderSummary:
    lines: list[OrderLine] = strawberry.field(description="The charges and credits, in order.")
    subtotal: Money = strawberry.field(description="The sum of the lines' amounts.")
    total: Money = strawberry.field(description="The amount charged to the card (no taxes are added).")
    billing_interval: BillingInterval = strawberry.field(description="The interval the order bills for.")

    @classmethod
    def of_quote(cls, quote: Quote) -> OrderSummary:
        currency = quote.currency
        return cls(
            lines=[OrderLine.of(line, currency) for line in quote.lines],
            subtotal=Money.of(quote.subtotal_minor, currency),
            total=Money.of(quote.total_minor, currency),
            billing_interval=quote.billing_interval,
        )


@strawberry.type(
    description="A purchase (`ord_…`) and its payment. Licenses or storage change once, only when it SUCCEEDED; "
    "watch it with paymentConfirmation."
)
class Order(Node):
    kind: OrderKind = strawberry.field(description="What the order buys.")
    status: OrderStatus = strawberry.field(
        description="Where its payment stands; final once SUCCEEDED, FAILED or CANCELED."
    )
    total: Money = strawberry.field(description="The amount charged (or to be charged).")
    failure_reason: str | None = strawberry.field(
        description='Why the payment FAILED, in the provider\'s words (e.g. "Your card was declined."); null otherwise.'
    )
    client_secret: str | None = strawberry.field(
        description="Set only while REQUIRES_ACTION: pass it to Stripe.js (handleNextAction) to finish 3-D Secure."
    )
    created_at: datetime = strawberry.field(description="When the order was placed.")
    updated_at: datetime = strawberry.field(description="When its status last changed.")
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

    @strawberry.field(description="The lines and totals the order charged.")
    async def summary(self, info: Info) -> OrderSummary:
        lines: list[OrderLineView] = await info.context.loaders.order_lines.load(self.view.id)
        currency = self.view.currency
        return OrderSummary(
            lines=[OrderLine.of(line, currency) for line in lines],
            subtotal=Money.of(self.view.subtotal_minor, currency),
            total=self.total,
            billing_interval=self.view.billing_interval,
        )

    @strawberry.field(description="The card charged; null if none was (a removed card is still shown).")
    async def payment_method(self, info: Info) -> PaymentMethod | None:
        if self.view.payment_method_id is None:
            return None
        method = await info.context.loaders.payment_methods.load(self.view.payment_method_id)
        return PaymentMethod.of(method) if method else None


@strawberry.type(description="An order in a page of orders.")
class OrderEdge:
    cursor: str = strawberry.field(description="Opaque; pass it as `after` to continue after this order.")
    node: Order = strawberry.field(description="The order.")


@strawberry.type(description="A page of orders, newest first (Relay connection).")
class OrderConnection:
    edges: list[OrderEdge] = strawberry.field(description="The orders of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page stands: is there a next one, and its cursors.")


def event_cursor(cursors: CursorCodec, partner_id: str, seq: int) -> str:
    """Sealed for the event's partner: opaque, stable, useless to another partner."""
    return cursors.encode("evt", partner_id, seq)


def decode_event_cursor(cursors: CursorCodec, partner_id: str, cursor: str) -> int:
    return cursors.decode_int(cursor, "evt", partner_id)


@strawberry.type(description="An order took a status; each event is stored and has a cursor.")
class OrderStatusEvent:
    order: Order = strawberry.field(description="The order as it stands now (its status may have moved on since).")
    status: OrderStatus = strawberry.field(description="The status the order took in this event.")
    occurred_at: datetime = strawberry.field(description="When it took that status.")
    cursor: str = strawberry.field(
        description="Opaque and the same for every subscriber: pass it to orderStatusChanged(after:) to resume "
        "right after this event."
    )
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

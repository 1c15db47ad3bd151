"""Orders, their summaries, and order status events."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import strawberry

from billing.errors import BadUserInput
from billing.quotes import Quote
from models import BillingInterval, OrderKind, OrderStatus
from models import Order as OrderRow
from models import OrderEvent as OrderEventRow
from models import OrderLine as OrderLineRow
from schema.billing import PaymentMethod
from schema.context import Info
from schema.money import Money
from schema.pagination import PageInfo, decode_cursor, encode_cursor

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
    """A quoted line (billing.quotes.QuoteLine) or a stored one (models.OrderLine)."""

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
    row: strawberry.Private[OrderRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    def kind(self) -> OrderKind:
        return OrderKind(self.row.kind)

    @strawberry.field
    def status(self) -> OrderStatus:
        return OrderStatus(self.row.status)

    @strawberry.field
    async def summary(self, info: Info) -> OrderSummary:
        lines: list[OrderLineRow] = await info.context.loaders.lines_by_order_id.load(self.row.id)
        currency = self.row.currency
        return OrderSummary(
            lines=[OrderLine.of(line, currency) for line in lines],
            subtotal=Money.of(self.row.subtotal_minor, currency),
            total=Money.of(self.row.total_minor, currency),
            billing_interval=BillingInterval(self.row.billing_interval),
        )

    @strawberry.field
    def total(self) -> Money:
        return Money.of(self.row.total_minor, self.row.currency)

    @strawberry.field
    async def payment_method(self, info: Info) -> PaymentMethod | None:
        if self.row.payment_method_id is None:
            return None
        method = await info.context.loaders.payment_method_by_id.load(self.row.payment_method_id)
        return PaymentMethod.of(method) if method else None

    @strawberry.field
    def failure_reason(self) -> str | None:
        return self.row.failure_reason

    @strawberry.field(description="Set while REQUIRES_ACTION: pass it to Stripe.js to finish 3-D Secure.")
    def client_secret(self) -> str | None:
        return self.row.client_secret if self.row.status == OrderStatus.REQUIRES_ACTION else None

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


def event_cursor(seq: int) -> str:
    return encode_cursor("evt", seq)


def decode_event_cursor(cursor: str) -> int:
    (seq,) = decode_cursor(cursor, "evt", 1)
    if not isinstance(seq, int) or seq < 0:
        raise BadUserInput("Malformed cursor.")
    return seq


@strawberry.type(description="An order took a status. `cursor` resumes orderStatusChanged(after:).")
class OrderStatusEvent:
    order: Order
    status: OrderStatus
    occurred_at: datetime
    cursor: str

    @classmethod
    def of(cls, event: OrderEventRow, order: OrderRow) -> OrderStatusEvent:
        assert event.seq is not None
        return cls(
            order=Order(row=order),
            status=OrderStatus(event.status),
            occurred_at=event.occurred_at,
            cursor=event_cursor(event.seq),
        )

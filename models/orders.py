"""Orders, their lines, and the stored stream of order status events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id, utcnow
from models.catalog import BillingInterval

__all__ = ["IN_FLIGHT", "Order", "OrderEvent", "OrderKind", "OrderLine", "OrderStatus", "may_come_from"]


class OrderKind(StrEnum):
    LICENSE_PURCHASE = "LICENSE_PURCHASE"
    STORAGE_UPGRADE = "STORAGE_UPGRADE"
    RENEWAL = "RENEWAL"  # the next period of a product, charged by the renewal pass


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    def may_become(self, new: OrderStatus) -> bool:
        """Orders only move forward: a late or repeated event never undoes a result."""
        return new in _NEXT[self]


_TERMINAL = frozenset({OrderStatus.SUCCEEDED, OrderStatus.FAILED, OrderStatus.CANCELED})
# Placed but not settled: the provider may still report on them.
IN_FLIGHT = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.REQUIRES_ACTION)
_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(OrderStatus) - {OrderStatus.PENDING},
    OrderStatus.REQUIRES_ACTION: _TERMINAL | {OrderStatus.PROCESSING},
    OrderStatus.PROCESSING: _TERMINAL | {OrderStatus.REQUIRES_ACTION},
    OrderStatus.SUCCEEDED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
}
_PREVIOUS: dict[OrderStatus, frozenset[OrderStatus]] = {
    new: frozenset(old for old, following in _NEXT.items() if new in following) for new in OrderStatus
}


def may_come_from(new: OrderStatus) -> frozenset[OrderStatus]:
    """The statuses an order may move to ``new`` from."""
    return _PREVIOUS[new]


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("customer_id", "idempotency_key", name="orders_idempotency"),
        Index("orders_customer_created", "customer_id", "created_at", "id"),
        Index("orders_status_updated", "status", "updated_at"),
        # The unsettled orders of a product or a customer, read by every purchase.
        Index("orders_product_status", "product_id", "status"),
        Index("orders_customer_status", "customer_id", "status"),
        # One renewal order per attempt at a product's period, however many
        # instances run the renewal pass (other orders leave these NULL, and
        # NULLs never collide).
        Index("orders_renewal_attempt", "product_id", "period_start", "renewal_attempt", unique=True),
    )

    id: str = Field(default_factory=lambda: new_id("ord"), primary_key=True, max_length=40)
    customer_id: str = Field(foreign_key="customers.id", max_length=40)
    partner_id: str = Field(foreign_key="partners.id", index=True, max_length=40)
    kind: OrderKind = Field(sa_column=Column(String(20), nullable=False))
    status: OrderStatus = Field(sa_column=Column(String(20), nullable=False))
    billing_interval: BillingInterval = Field(sa_column=Column(String(10), nullable=False))
    currency: str = Field(default="USD", max_length=3)
    subtotal_minor: int
    total_minor: int
    # What fulfilment does once paid: add `quantity` licenses to `product_id`,
    # move the customer to `plan_id` with `quantity` licenses (replacing
    # `product_id`), or (RENEWAL) start `product_id`'s period `period_start` to
    # `period_end` with `quantity` licenses.
    product_id: str | None = Field(default=None, max_length=40)
    plan_id: str | None = Field(default=None, max_length=64)
    quantity: int
    payment_method_id: str | None = Field(default=None, max_length=40)
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_fingerprint: str = Field(max_length=64)
    # Sent to the provider with the charge; derived from the order id and stored
    # before the provider is called so a retry finds the first charge.
    provider_idempotency_key: str = Field(max_length=80)
    provider_payment_ref: str | None = Field(default=None, max_length=255, index=True)
    client_secret: str | None = Field(default=None, max_length=255)
    failure_reason: str | None = Field(default=None, max_length=500)
    created_by_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    fulfilled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # RENEWAL orders only: the period paid for, and which attempt at it this is (0 first).
    period_start: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    period_end: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    renewal_attempt: int | None = None


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    position: int
    description: str = Field(max_length=300)
    quantity: int
    unit_price_minor: int
    amount_minor: int


class OrderEvent(SQLModel, table=True):
    """One status an order took. ``seq`` orders all events and is the
    subscription cursor; events are committed in ``seq`` order."""

    __tablename__ = "order_events"
    __table_args__ = (Index("order_events_partner_seq", "partner_id", "seq"),)

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    order_id: str = Field(sa_column=Column(String(40), ForeignKey("orders.id"), nullable=False, index=True))
    customer_id: str = Field(max_length=40)
    partner_id: str = Field(max_length=40)
    status: OrderStatus = Field(sa_column=Column(String(20), nullable=False))
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

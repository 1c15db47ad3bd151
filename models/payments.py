"""Rows kept for the payment providers: sandbox state and processed webhooks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow

__all__ = ["ProcessedWebhookEvent", "SandboxPayment", "SandboxPaymentMethod"]


class SandboxPaymentMethod(SQLModel, table=True):
    """What the sandbox provider knows of an attached test token."""

    __tablename__ = "sandbox_payment_methods"

    id: str = Field(primary_key=True, max_length=40)
    token: str = Field(max_length=100)
    provider_customer_ref: str = Field(max_length=64)
    detached: bool = False


class SandboxPayment(SQLModel, table=True):
    """The sandbox provider's PaymentIntent, one per order."""

    __tablename__ = "sandbox_payments"

    id: str = Field(primary_key=True, max_length=40)
    order_id: str = Field(unique=True, max_length=40)
    amount_minor: int
    currency: str = Field(max_length=3)
    payment_method_ref: str = Field(max_length=40)
    status: str = Field(max_length=20)
    client_secret: str = Field(max_length=100)
    failure_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ProcessedWebhookEvent(SQLModel, table=True):
    """Webhook event ids already handled, so a redelivery is answered and ignored."""

    __tablename__ = "processed_webhook_events"

    id: str = Field(primary_key=True, max_length=255)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

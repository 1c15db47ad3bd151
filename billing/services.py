"""What the billing operations need from the running gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from events.log import EventNotifier
from models import OrderKind, OrderStatus
from models.base import utcnow
from models.database import Database
from payments.provider import PaymentProvider

__all__ = ["BillingServices"]


def _ignore(kind: OrderKind, status: OrderStatus) -> None:
    return None


@dataclass
class BillingServices:
    db: Database
    provider: PaymentProvider
    notifier: EventNotifier
    clock: Callable[[], datetime] = field(default=utcnow)
    # Called after each committed order status change (placement included),
    # e.g. to count it; the gateway passes its metrics, billing knows no more.
    order_status_committed: Callable[[OrderKind, OrderStatus], None] = _ignore
    # RENEWAL_RETRY_DAYS: days after a period's end to retry charging the next one.
    renewal_retry_days: tuple[int, ...] = (1, 3, 7)

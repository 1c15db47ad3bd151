"""What the billing operations need from the running gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from events.log import EventNotifier
from models.base import utcnow
from models.database import Database
from payments.provider import PaymentProvider

__all__ = ["BillingServices"]


@dataclass
class BillingServices:
    db: Database
    provider: PaymentProvider
    notifier: EventNotifier
    clock: Callable[[], datetime] = field(default=utcnow)
    # RENEWAL_RETRY_DAYS: days after a period's end to retry charging the next one.
    renewal_retry_days: tuple[int, ...] = (1, 3, 7)

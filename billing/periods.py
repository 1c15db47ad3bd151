"""Billing periods: a product's periods run from its anchor in whole intervals."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from models.catalog import BillingInterval

__all__ = ["BillingPeriod", "add_months", "current_period"]


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month ``months`` later, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class BillingPeriod:
    start: datetime
    end: datetime

    def days_left(self, today: date) -> int:
        """Whole days left, at least one: buying on the period's last day pays a day."""
        return max(1, min((self.end.date() - today).days, self.length_days))

    @property
    def length_days(self) -> int:
        return (self.end.date() - self.start.date()).days


def current_period(anchor: datetime, interval: BillingInterval, now: datetime) -> BillingPeriod:
    """The period containing ``now`` (the first one if ``now`` precedes the anchor)."""
    step = 1 if interval is BillingInterval.MONTHLY else 12
    if now < anchor:
        return BillingPeriod(anchor, add_months(anchor, step))
    # Jump close to the right period, then walk; computing from the anchor each
    # time keeps month-end clamping from drifting (Jan 31 → Feb 28 → Mar 31).
    months_since_anchor = (now.year - anchor.year) * 12 + now.month - anchor.month
    n = max(0, months_since_anchor // step - 1)
    while add_months(anchor, (n + 1) * step) <= now:
        n += 1
    return BillingPeriod(add_months(anchor, n * step), add_months(anchor, (n + 1) * step))

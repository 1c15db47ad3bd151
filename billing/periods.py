"""Billing periods: a product's periods run from its anchor in whole intervals.

A product stores the period it has paid for (``current_period_start`` and
``current_period_end``); these functions say where its periods fall, never
which one is paid.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from models.catalog import BillingInterval

__all__ = ["BillingPeriod", "add_months", "current_period", "first_period", "period_after"]


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


def _months(interval: BillingInterval) -> int:
    return 1 if interval == BillingInterval.MONTHLY else 12


def first_period(start: datetime, interval: BillingInterval) -> BillingPeriod:
    """The first period of a plan bought at ``start`` (which becomes its anchor)."""
    return BillingPeriod(start, add_months(start, _months(interval)))


def period_after(anchor: datetime, interval: BillingInterval, period: BillingPeriod) -> BillingPeriod:
    """The period following ``period``: from its end to the anchor's next boundary."""
    return BillingPeriod(period.end, current_period(anchor, interval, period.end).end)


def current_period(anchor: datetime, interval: BillingInterval, now: datetime) -> BillingPeriod:
    """The period containing ``now`` (the first one if ``now`` precedes the anchor)."""
    step = _months(interval)
    if now < anchor:
        return BillingPeriod(anchor, add_months(anchor, step))
    # Jump close to the right period, then walk; computing from the anchor each
    # time keeps month-end clamping from drifting (Jan 31 → Feb 28 → Mar 31).
    months_since_anchor = (now.year - anchor.year) * 12 + now.month - anchor.month
    n = max(0, months_since_anchor // step - 1)
    while add_months(anchor, (n + 1) * step) <= now:
        n += 1
    return BillingPeriod(add_months(anchor, n * step), add_months(anchor, (n + 1) * step))

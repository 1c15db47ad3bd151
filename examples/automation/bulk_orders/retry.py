"""How long to wait before asking again.

The gateway says how long itself when it refuses for the rate limit: the
error's ``extensions.retryAfter`` (seconds) and, over HTTP, the
``Retry-After`` header. Either is honoured, the error's field first. Anything
else that may pass (a dropped connection, a timeout, a 502) waits an
exponentially growing, jittered delay, so many scripts restarted together do
not all come back in the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["RetryPolicy", "retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # sends of one request, the first included
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer wait asked for ends the row instead

    def backoff(self, failures: int) -> float:
        """The wait after the ``failures``-th failure (1, 2, ...): half fixed, half random."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after(errors: object, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds the gateway asked to wait: a ``RATE_LIMITED`` error's
    ``extensions.retryAfter``, else a ``Retry-After`` header (seconds or an
    HTTP date), else None."""
    for error in errors if isinstance(errors, list) else []:
        extensions: Any = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and extensions.get("code") == "RATE_LIMITED":
            seconds = _seconds(extensions.get("retryAfter"))
            if seconds is not None:
                return seconds
    header = (headers or {}).get("retry-after")
    if header is None:
        return None
    seconds = _seconds(header)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value))
    if isinstance(value, str):
        try:
            return max(0.0, float(value.strip()))
        except ValueError:
            return None
    return None

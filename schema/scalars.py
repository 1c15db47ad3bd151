"""``DateTime``: an RFC 3339 instant, as https://scalars.graphql.org/andimarek/date-time
specifies it (announced with ``@specifiedBy``, so clients and code generators
know the exact format).

Out: always UTC with milliseconds, ``2026-03-01T09:30:00.000Z``. In: any
RFC 3339 date-time with an offset (``Z`` or ``±hh:mm``); a value without one
is refused, since it names no instant.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition

__all__ = ["DATE_TIME", "DATE_TIME_SPEC", "parse_date_time", "serialize_date_time"]

DATE_TIME_SPEC = "https://scalars.graphql.org/andimarek/date-time"


@functools.lru_cache(maxsize=4096)
def serialize_date_time(value: datetime) -> str:
    # Cached: the same instants (periods' ends, cards' dates) are sent again and again.
    if value.tzinfo is None:
        # Stored instants are UTC; a naive one (SQLite hands some back) is too.
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_date_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be a string such as 2026-03-01T09:30:00.000Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"DateTime must be RFC 3339, such as 2026-03-01T09:30:00.000Z; got {value!r}") from None
    if parsed.tzinfo is None or "T" not in value.upper():
        raise ValueError(f"DateTime needs a date, a time and an offset (Z or ±hh:mm); got {value!r}")
    return parsed.astimezone(UTC)


DATE_TIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant, RFC 3339 with milliseconds, always in UTC on output: `2026-03-01T09:30:00.000Z`. "
        "Inputs need an offset (`Z` or `+02:00`)."
    ),
    specified_by_url=DATE_TIME_SPEC,
    serialize=serialize_date_time,
    parse_value=parse_date_time,
)

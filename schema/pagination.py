"""Relay-style page info and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json

import strawberry

from billing.errors import BadUserInput

__all__ = ["DEFAULT_PAGE_SIZE", "PageInfo", "decode_cursor", "encode_cursor", "page_info", "page_size"]

DEFAULT_PAGE_SIZE = 20


@strawberry.type(
    description="Where a page stands in its connection (Relay's PageInfo). Pages go forward only: `first` and `after`."
)
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Whether items come before this page: true when `after` was given (Relay's rule for forward "
        "pagination), false on the first page."
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor; null for an empty page.")
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor: pass it as `after` for the next page; null for an empty page."
    )


def page_info(cursors: list[str], *, has_next_page: bool, after: str | None) -> PageInfo:
    """The page info of a forward page whose edges have ``cursors``."""
    return PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def encode_cursor(kind: str, *values: str | int) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, arity: int) -> list[str | int]:
    """The values in a cursor made by :func:`encode_cursor`; BAD_USER_INPUT otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = None
    if (
        not isinstance(decoded, list)
        or len(decoded) != arity + 1
        or decoded[0] != kind
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in decoded[1:])
    ):
        raise BadUserInput("Malformed cursor.")
    return decoded[1:]


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if first < 0:
        raise BadUserInput("`first` must not be negative.")
    return min(first, maximum)

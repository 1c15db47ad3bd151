"""Relay-style page info (cursors: ``schema.cursors``)."""

from __future__ import annotations

import strawberry

from billing.errors import BadUserInput

__all__ = ["DEFAULT_PAGE_SIZE", "PageInfo", "page_info", "page_size"]

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


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if first < 0:
        raise BadUserInput("`first` must not be negative.")
    return min(first, maximum)

"""Relay-style page info (cursors: ``schema.cursors``)."""

from __future__ import annotations

import strawberry

from billing.errors import BadUserInput

__all__ = ["DEFAULT_PAGE_SIZE", "PageInfo", "page_size"]

DEFAULT_PAGE_SIZE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if first < 0:
        raise BadUserInput("`first` must not be negative.")
    return min(first, maximum)

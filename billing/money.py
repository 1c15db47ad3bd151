"""Exact money: integer minor units, formatted only at the edge."""

from __future__ import annotations

__all__ = ["format_minor", "prorate"]


def format_minor(minor: int, *, exponent: int = 2) -> str:
    """``1250`` → ``"12.50"``; ``-5`` → ``"-0.05"``."""
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def prorate(amount_minor: int, numerator: int, denominator: int) -> int:
    """``amount * numerator / denominator`` rounded half up, in integers only."""
    if denominator <= 0 or not 0 <= numerator <= denominator:
        raise ValueError("proration fraction must lie in [0, 1]")
    return (2 * amount_minor * numerator + denominator) // (2 * denominator)

"""The run's outcome: a table for people, JSON for other programs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bulk_orders.runner import RowResult

__all__ = ["as_json", "render_table"]

HEADERS = ("line", "customer", "what", "order", "status", "total", "placed (UTC)", "error")


def render_table(results: Sequence[RowResult]) -> str:
    """Aligned columns, one row per purchase, and a count at the end."""
    rows = [
        (
            str(r.row.line),
            r.row.customer_id,
            r.row.describe(),
            r.order_id or "-",
            r.status or "-",
            r.total or "-",
            _when(r.placed_at),
            r.error or "",
        )
        for r in results
    ]
    widths = [max(len(cells[i]) for cells in [HEADERS, *rows]) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [HEADERS, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    failed = sum(not r.succeeded for r in results)
    lines.append("")
    lines.append(f"{len(results) - failed} of {len(results)} succeeded" + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)


def as_json(results: Sequence[RowResult]) -> list[dict[str, Any]]:
    return [
        {
            "line": r.row.line,
            "customerId": r.row.customer_id,
            "kind": r.row.kind.value,
            "targetId": r.row.target_id,
            "quantity": r.row.quantity,
            "billingInterval": r.row.billing_interval,
            "idempotencyKey": r.idempotency_key,
            "orderId": r.order_id,
            "status": r.status,
            "total": r.total,
            "placedAt": r.placed_at,
            "error": r.error,
            "succeeded": r.succeeded,
        }
        for r in results
    ]


def _when(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

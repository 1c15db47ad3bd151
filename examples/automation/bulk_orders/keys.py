"""Idempotency keys: the same purchase in the same run always sends the same key.

A key is a hash of the run label, the row's purchase (customer, product or
plan, billing interval, quantity) and which occurrence of that exact purchase
in the file it is (the first, the second, ...). Not the line number: inserting,
deleting or reordering other lines and running again must not buy anything
twice. Two identical lines are two purchases (occurrences 1 and 2).

The gateway keeps a key per customer: the same key returns the first order
and never charges again, and the same key with a different input is refused
(``IDEMPOTENCY_KEY_REUSED``). So rerunning a file is safe, and a new batch
needs a new run label (by default the file's name).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence

from bulk_orders.rows import OrderRow

__all__ = ["KEY_PREFIX", "idempotency_keys"]

KEY_PREFIX = "bulk-orders-v1-"  # a new scheme gets a new prefix, never colliding with this one


def idempotency_keys(run_label: str, rows: Sequence[OrderRow]) -> list[str]:
    """One key per row, in order."""
    seen: Counter[tuple[str, ...]] = Counter()
    keys: list[str] = []
    for row in rows:
        purchase = (row.customer_id, row.kind.value, row.target_id, row.billing_interval or "", str(row.quantity))
        seen[purchase] += 1
        material = json.dumps([run_label, *purchase, seen[purchase]], ensure_ascii=False)
        keys.append(KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest())
    return keys

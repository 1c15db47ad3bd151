"""The checks every purchase makes for unsettled orders read only unsettled
orders, through an index, on a real SQLite file migrated to head: a product
or customer with thousands of settled orders costs a purchase no more than
one with none (before migration 0004 each check read every order the product
or customer ever had)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from billing.product_renewal import _IN_FLIGHT as RENEWAL_IN_FLIGHT
from billing.purchases import _IN_FLIGHT_FOR_STORAGE
from migrations.runner import migrate
from models.database import Database, Query, _arguments
from models.orders import IN_FLIGHT

_UNSETTLED = json.dumps([status.value for status in IN_FLIGHT])


@pytest.fixture
async def migrated(tmp_path: Path) -> Path:
    path = tmp_path / "plans.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db)
    finally:
        await db.dispose()
    return path


def _plan(path: Path, query: Query, **params: object) -> str:
    compiled = query.compiled("sqlite")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + compiled.sql, _arguments(compiled, params))
        return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (RENEWAL_IN_FLIGHT, "orders_product_status (product_id=? AND status=?)"),
        (_IN_FLIGHT_FOR_STORAGE["licenses"], "orders_customer_status (customer_id=? AND status=?)"),
        (_IN_FLIGHT_FOR_STORAGE["change"], "orders_customer_status (customer_id=? AND status=?)"),
    ],
    ids=["renewal of the product", "plan change of the customer", "storage orders of the customer"],
)
async def test_unsettled_order_checks_search_by_status(migrated: Path, query: Query, index: str) -> None:
    plan = _plan(migrated, query, product_id="prd_x", customer_id="cst_x", in_flight=_UNSETTLED)
    assert f"SEARCH orders USING INDEX {index}" in plan, plan

"""examples/automation's rules that need no gateway: what a bad file is told,
which rows share an idempotency key, how long a refusal says to wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from bulk_orders.keys import idempotency_keys
from bulk_orders.retry import retry_after
from bulk_orders.rows import CsvError, OrderKind, OrderRow, read_rows

HEADER = "customer_id,product_id,plan_id,billing_interval,quantity\n"


def problems(tmp_path: Path, text: str | bytes) -> list[tuple[int, str]]:
    path = tmp_path / "orders.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CsvError) as raised:
        read_rows(path)
    return raised.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [(1, "the file is empty; the first line must name the columns")]),
        ("customer_id,product_id,quantity\n", [(1, "no orders after the header line")]),
        ("customer,product_id,quantity\nc,p,1\n", [(1, "unknown column(s) 'customer'"), (1, "missing column(s)")]),
        ("customer_id,quantity\nc,1\n", [(1, "needs a product_id column")]),
        ("customer_id,product_id,quantity,quantity\nc,p,1,1\n", [(1, "column(s) named twice: quantity")]),
        (HEADER + "c,p,,,-1\n", [(2, "quantity must be a whole number of at least 1, got '-1'")]),
        (HEADER + "c,p,,,\n", [(2, "quantity must be a whole number of at least 1, got nothing")]),
        (
            HEADER + "c,p,pl,MONTHLY,1\n",
            [(2, "give a product_id (to buy licenses) or a plan_id (to buy storage), not both")],
        ),
        (
            HEADER + "c,,pl,weekly,1\n",
            [(2, "billing_interval must be MONTHLY or YEARLY for a storage plan, got 'WEEKLY'")],
        ),
        (HEADER + "c,p,,YEARLY,1\n", [(2, "billing_interval is for storage plans only")]),
        (HEADER + ",,,,1\n", [(2, "customer_id is empty"), (2, "needs a product_id (to buy licenses) or a plan_id")]),
        (HEADER + "c,p,,,1\n\nc,p,1\n", [(4, "3 fields, but the header names 5 columns")]),
        (HEADER + 'c,"p\n2",,,1\nc,p,,,x\n', [(4, "quantity must be a whole number of at least 1, got 'x'")]),
        (b"\xff\xfecustomer_id", [(0, "not UTF-8 text")]),
    ],
)
def test_a_bad_file_is_refused_naming_each_line_and_what_is_wrong(
    tmp_path: Path, text: str | bytes, expected: list[tuple[int, str]]
) -> None:
    found = problems(tmp_path, text)
    assert len(found) == len(expected), found
    for (line, message), (expected_line, expected_start) in zip(found, expected, strict=True):
        assert line == expected_line and message.startswith(expected_start), found


def test_a_good_file_reads_as_purchases(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    # A spreadsheet's byte-order mark, spaces, lower-case interval, a note and blank lines.
    path.write_text(
        "\ufeffCustomer_ID , product_id,plan_id,billing_interval,quantity,note\n"
        "cst_1, prd_1 ,,, 3 ,top up\n\n,,,,,\ncst_2,,plan_storage_1tb,yearly,2,\n",
        encoding="utf-8",
    )
    assert read_rows(path) == [
        OrderRow(2, "cst_1", OrderKind.LICENSES, "prd_1", 3, None),
        OrderRow(5, "cst_2", OrderKind.STORAGE, "plan_storage_1tb", 2, "YEARLY"),
    ]


def test_keys_follow_the_purchase_not_its_line() -> None:
    buy = OrderRow(2, "cst_1", OrderKind.LICENSES, "prd_1", 3, None)
    other = OrderRow(3, "cst_2", OrderKind.LICENSES, "prd_2", 1, None)
    moved = OrderRow(9, "cst_1", OrderKind.LICENSES, "prd_1", 3, None)

    first, twice, _ = idempotency_keys("june", [buy, buy, other])
    assert first != twice  # the same purchase listed twice is bought twice
    assert idempotency_keys("june", [other, moved, buy])[1:] == [first, twice]  # lines moved: same keys
    assert idempotency_keys("july", [buy])[0] != first  # a new run label is a new batch
    assert idempotency_keys("june", [OrderRow(2, "cst_1", OrderKind.LICENSES, "prd_1", 4, None)])[0] != first
    assert all(len(key) <= 255 for key in (first, twice))


def test_retry_after_prefers_the_error_field_then_the_header() -> None:
    limited = [{"message": "slow down", "extensions": {"code": "RATE_LIMITED", "retryAfter": 2.5}}]
    without_field = [{"message": "slow down", "extensions": {"code": "RATE_LIMITED"}}]
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)

    assert retry_after(limited, {"retry-after": "7"}) == 2.5
    assert retry_after(without_field, {"retry-after": "7"}) == 7.0
    assert 55 <= (retry_after(without_field, {"retry-after": in_a_minute}) or 0) <= 60
    assert retry_after(without_field, {}) is None
    assert retry_after([{"extensions": {"code": "RATE_LIMITED", "retryAfter": "soon"}}], {}) is None

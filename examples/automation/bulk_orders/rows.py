"""The order file: a CSV with a header row, read and checked as a whole
before anything is bought, so a typo on line 40 never leaves lines 2 to 39
bought and the rest not."""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COLUMNS", "CsvError", "OrderKind", "OrderRow", "read_rows"]

REQUIRED = ("customer_id", "quantity")
OPTIONAL = ("product_id", "plan_id", "billing_interval", "note")
COLUMNS = REQUIRED + OPTIONAL
INTERVALS = ("MONTHLY", "YEARLY")


class OrderKind(enum.Enum):
    LICENSES = "licenses"  # buyLicenses on a product the customer holds
    STORAGE = "storage"  # upgradeStorage to a cloud-storage plan


@dataclass(frozen=True)
class OrderRow:
    """One purchase. ``line`` is the file's line number, for messages."""

    line: int
    customer_id: str
    kind: OrderKind
    target_id: str  # a product id (LICENSES) or a plan id (STORAGE)
    quantity: int
    billing_interval: str | None  # STORAGE only

    def describe(self) -> str:
        if self.kind is OrderKind.LICENSES:
            return f"+{self.quantity} licenses on {self.target_id}"
        return f"{self.target_id} x{self.quantity} {self.billing_interval}"


class CsvError(Exception):
    """The file cannot be used; ``problems`` are ``(line, message)`` pairs."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(
            "\n".join(f"{path}:{line}: {message}" if line else f"{path}: {message}" for line, message in problems)
        )


def read_rows(path: Path) -> list[OrderRow]:
    """Every row of ``path``, or :class:`CsvError` naming every bad line."""
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark first.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CsvError(path, [(0, "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise CsvError(
            path, [(0, f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise CsvError(path, [(0, f"cannot read the file: {exc.strerror}")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = [(reader.line_num, record) for record in reader]
    except csv.Error as exc:
        raise CsvError(path, [(reader.line_num, f"not valid CSV: {exc}")]) from None
    records = [(line, record) for line, record in records if any(field.strip() for field in record)]
    if not records:
        raise CsvError(path, [(1, f"the file is empty; the first line must name the columns: {', '.join(COLUMNS)}")])
    header_line, header = records[0]
    columns, problems = _read_header(header_line, header)
    if problems:
        raise CsvError(path, problems)
    rows: list[OrderRow] = []
    for line, record in records[1:]:
        row = _read_row(line, record, columns, problems)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.append((header_line, "no orders after the header line"))
    if problems:
        raise CsvError(path, problems)
    return rows


def _read_header(line: int, header: list[str]) -> tuple[list[str], list[tuple[int, str]]]:
    columns = [name.strip().lower() for name in header]
    problems: list[tuple[int, str]] = []
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        problems.append(
            (line, f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are {', '.join(COLUMNS)}")
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        problems.append((line, f"column(s) named twice: {', '.join(repeated)}"))
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        problems.append((line, f"missing column(s): {', '.join(missing)}"))
    if "product_id" not in columns and "plan_id" not in columns:
        problems.append((line, "needs a product_id column (licenses), a plan_id column (storage) or both"))
    return columns, problems


def _read_row(line: int, record: list[str], columns: list[str], problems: list[tuple[int, str]]) -> OrderRow | None:
    if len(record) != len(columns):
        problems.append((line, f"{len(record)} fields, but the header names {len(columns)} columns"))
        return None
    fields = {name: value.strip() for name, value in zip(columns, record, strict=True)}
    found: list[str] = []
    customer_id = fields.get("customer_id", "")
    if not customer_id:
        found.append("customer_id is empty")
    quantity = _quantity(fields.get("quantity", ""), found)
    product_id, plan_id = fields.get("product_id", ""), fields.get("plan_id", "")
    interval = fields.get("billing_interval", "").upper()
    kind, target_id = OrderKind.LICENSES, product_id
    if product_id and plan_id:
        found.append("give a product_id (to buy licenses) or a plan_id (to buy storage), not both")
    elif plan_id:
        kind, target_id = OrderKind.STORAGE, plan_id
        if interval not in INTERVALS:
            found.append(f"billing_interval must be MONTHLY or YEARLY for a storage plan, {_got(interval)}")
    elif product_id:
        if interval:
            found.append("billing_interval is for storage plans only: licenses follow their product's interval")
    else:
        found.append("needs a product_id (to buy licenses) or a plan_id (to buy storage)")
    if found:
        problems.extend((line, message) for message in found)
        return None
    assert quantity is not None
    return OrderRow(
        line=line,
        customer_id=customer_id,
        kind=kind,
        target_id=target_id,
        quantity=quantity,
        billing_interval=interval if kind is OrderKind.STORAGE else None,
    )


def _quantity(text: str, found: list[str]) -> int | None:
    # The gateway enforces its own upper limit (10,000 by default, set per
    # deployment); here only what can never be right.
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        found.append(f"quantity must be a whole number of at least 1, {_got(text)}")
        return None
    return int(text)


def _got(text: str) -> str:
    return f"got {text!r}" if text else "got nothing"

"""The partner's customers: the reads every acting-customer check and the
customer list need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, bindparam, or_, select

from models.database import Connection, Query, Row, any_of
from models.tables import customers

__all__ = ["CustomerView", "customer_with", "customers_by_id", "customers_page", "split_customer"]


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: str
    partner_id: str
    name: str
    # The payment provider's customer (a Stripe Customer id), made on first need.
    provider_customer_ref: str | None


_COLUMNS = (customers.c.id, customers.c.partner_id, customers.c.name, customers.c.provider_customer_ref)
_BY_IDS = Query(select(*_COLUMNS).where(any_of(customers.c.id, "ids")))
_FIRST_PAGE = Query(
    select(*_COLUMNS)
    .where(customers.c.partner_id == bindparam("partner_id"))
    .order_by(customers.c.name, customers.c.id)
    .limit(bindparam("limit"))
)
_NEXT_PAGE = Query(
    select(*_COLUMNS)
    .where(
        customers.c.partner_id == bindparam("partner_id"),
        or_(
            customers.c.name > bindparam("name"),
            (customers.c.name == bindparam("name")) & (customers.c.id > bindparam("id")),
        ),
    )
    .order_by(customers.c.name, customers.c.id)
    .limit(bindparam("limit"))
)


def customer_with(columns: Sequence[ColumnElement[Any]], join: FromClause, on: ColumnElement[bool]) -> Select[Any]:
    """``SELECT`` the partner's customer (``:customer_id``, ``:partner_id``)
    and its rows of ``join``, one per row, LEFT JOINed ``on``: the tenancy
    check and the read in one statement (rows for :func:`split_customer`)."""
    return (
        select(*_COLUMNS, *columns)
        .select_from(customers.outerjoin(join, on))
        .where(customers.c.id == bindparam("customer_id"), customers.c.partner_id == bindparam("partner_id"))
    )


def split_customer(rows: Sequence[Row]) -> tuple[CustomerView | None, list[Row]]:
    """The customer of rows read with :func:`customer_with` (None when there
    are none: not the partner's customer) and the joined part of each row
    that found one (none when the customer has nothing)."""
    if not rows:
        return None, []
    width = len(_COLUMNS)
    customer = CustomerView(*rows[0][:width])
    return customer, [row[width:] for row in rows if row[width] is not None]


async def customers_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, CustomerView]:
    rows = await conn.all(_BY_IDS, ids=list(ids))
    return {row[0]: CustomerView(*row) for row in rows}


async def customers_page(
    conn: Connection, partner_id: str, *, after: tuple[str, str] | None, limit: int
) -> list[CustomerView]:
    """Up to ``limit`` customers by name, after the (name, id) key given."""
    if after is None:
        rows = await conn.all(_FIRST_PAGE, partner_id=partner_id, limit=limit)
    else:
        rows = await conn.all(_NEXT_PAGE, partner_id=partner_id, name=after[0], id=after[1], limit=limit)
    return [CustomerView(*row) for row in rows]

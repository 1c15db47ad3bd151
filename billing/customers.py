"""The partner's customers: the reads every acting-customer check and the
customer list need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select

from models.database import Connection, Query, any_of
from models.tables import customers

__all__ = ["CustomerView", "customers_by_id", "customers_page"]


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

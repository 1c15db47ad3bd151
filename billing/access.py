"""Who may act, and on whose behalf."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from auth.principal import Principal
from billing.customers import CustomerView
from billing.errors import Forbidden, NotFound
from models.database import Connection, Query
from models.tables import customers

__all__ = [
    "MAX_ID_LENGTH",
    "acting_customer",
    "check_acting_customer",
    "lock_acting_customer",
    "plausible_id",
    "require_billing",
]

# Ids are short opaque strings; anything longer names nothing and is not looked up.
MAX_ID_LENGTH = 64


def require_billing(principal: Principal) -> None:
    if not principal.role.may_bill:
        raise Forbidden("Partner Administrators cannot see or change billing.")


def check_acting_customer(principal: Principal, customer: CustomerView | None) -> CustomerView:
    """The customer if it is the caller's partner's; NOT_FOUND otherwise, so
    a caller learns nothing about other tenants' ids."""
    if customer is None or customer.partner_id != principal.partner_id:
        raise NotFound("No such customer.")
    return customer


def plausible_id(value: str) -> bool:
    """Whether ``value`` could be an id at all (no lookup for anything else)."""
    return 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and value.isprintable()


_CUSTOMER = (customers.c.id, customers.c.partner_id, customers.c.name, customers.c.provider_customer_ref)
_BY_ID = Query(select(*_CUSTOMER).where(customers.c.id == bindparam("id")))
# Inside a write transaction: serialises one customer's orders. PostgreSQL
# locks the row; SQLite's writer lock already serialises every writer.
_BY_ID_LOCKED = Query(select(*_CUSTOMER).where(customers.c.id == bindparam("id")).with_for_update())


async def acting_customer(conn: Connection, principal: Principal, customer_id: str) -> CustomerView:
    row = await conn.first(_BY_ID, id=customer_id) if plausible_id(customer_id) else None
    return check_acting_customer(principal, CustomerView(*row) if row else None)


async def lock_acting_customer(tx: Connection, principal: Principal, customer_id: str) -> CustomerView:
    """:func:`acting_customer`, holding the customer's row until the transaction ends."""
    row = await tx.first(_BY_ID_LOCKED, id=customer_id) if plausible_id(customer_id) else None
    return check_acting_customer(principal, CustomerView(*row) if row else None)

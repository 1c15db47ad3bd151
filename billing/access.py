"""Who may act, and on whose behalf."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from auth.principal import Principal
from billing.errors import Forbidden, NotFound
from models import Customer

__all__ = ["acting_customer", "lock_customer", "require_billing"]

_MAX_ID_LENGTH = 64


def require_billing(principal: Principal) -> None:
    if not principal.role.may_bill:
        raise Forbidden("Partner Administrators cannot see or change billing.")


async def acting_customer(session: AsyncSession, principal: Principal, customer_id: str) -> Customer:
    """The caller's partner's customer; any other id, existing or not, is NOT_FOUND."""
    customer = None
    if 0 < len(customer_id) <= _MAX_ID_LENGTH:
        customer = await session.get(Customer, customer_id)
    if customer is None or customer.partner_id != principal.partner_id:
        raise NotFound("No such customer.")
    return customer


async def lock_customer(session: AsyncSession, customer_id: str) -> None:
    """Serialise orders of one customer. SQLite already holds the database's
    write lock (BEGIN IMMEDIATE); PostgreSQL needs a row lock."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        connection = await session.connection()  # sqlmodel deprecates session.execute()
        await connection.execute(text("SELECT id FROM customers WHERE id = :id FOR UPDATE"), {"id": customer_id})

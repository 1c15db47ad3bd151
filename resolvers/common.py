"""What every resolver does first: who is calling, on whose behalf."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from auth.principal import Principal
from billing.access import check_acting_customer, plausible_id, require_billing
from billing.customers import CustomerView
from models.database import Connection
from schema.context import Info

__all__ = ["caller_and_customer", "caller_customer_and"]

T = TypeVar("T")


async def caller_and_customer(info: Info, customer_id: str, *, billing: bool) -> tuple[Principal, CustomerView]:
    """The caller and their acting customer; billing data needs a billing role.

    The role is checked before the customer so a refused role learns nothing
    about which ids exist. The customer is read once per request, however
    many fields act for it.
    """
    principal = _caller(info, billing=billing)
    customer = await info.context.loaders.customers.load(customer_id) if plausible_id(customer_id) else None
    return principal, check_acting_customer(principal, customer)


async def caller_customer_and(
    info: Info,
    customer_id: str,
    read: Callable[[Connection, str, str], Awaitable[tuple[CustomerView | None, list[T]]]],
    *,
    billing: bool,
) -> tuple[CustomerView, list[T]]:
    """As :func:`caller_and_customer`, with the acting customer's rows that
    ``read`` fetches in the same statement as the customer (one round trip
    instead of two, on the dashboard's hot path)."""
    principal = _caller(info, billing=billing)
    customer, rows = (
        await read(info.context.db, principal.partner_id, customer_id) if plausible_id(customer_id) else (None, [])
    )
    customer = check_acting_customer(principal, customer)
    # Other fields acting for this customer need not read it again.
    info.context.loaders.customers.prime(customer.id, customer)
    return customer, rows


def _caller(info: Info, *, billing: bool) -> Principal:
    # The role before the customer, so a refused role learns nothing about ids.
    principal = info.context.caller()
    if billing:
        require_billing(principal)
    return principal

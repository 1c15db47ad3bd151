"""What every resolver does first: who is calling, on whose behalf."""

from __future__ import annotations

from auth.principal import Principal
from billing.access import acting_customer, require_billing
from models import Customer
from schema.context import Info

__all__ = ["caller_and_customer"]


async def caller_and_customer(info: Info, customer_id: str, *, billing: bool) -> tuple[Principal, Customer]:
    """The caller and their acting customer; billing data needs a billing role.

    The role is checked before the customer so a refused role learns nothing
    about which ids exist.
    """
    principal = info.context.caller()
    if billing:
        require_billing(principal)
    async with info.context.services.db.read() as session:
        customer = await acting_customer(session, principal, customer_id)
    return principal, customer

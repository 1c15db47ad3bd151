"""What every resolver does first: who is calling, on whose behalf."""

from __future__ import annotations

from auth.principal import Principal
from billing.access import check_acting_customer, plausible_id, require_billing
from billing.customers import CustomerView
from schema.context import Info

__all__ = ["caller_and_customer"]


async def caller_and_customer(info: Info, customer_id: str, *, billing: bool) -> tuple[Principal, CustomerView]:
    """The caller and their acting customer; billing data needs a billing role.

    The role is checked before the customer so a refused role learns nothing
    about which ids exist. The customer is read once per request, however
    many fields act for it.
    """
    principal = info.context.caller()
    if billing:
        require_billing(principal)
    customer = await info.context.loaders.customers.load(customer_id) if plausible_id(customer_id) else None
    return principal, check_acting_customer(principal, customer)

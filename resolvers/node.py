"""``node(id:)``: any object with an id, under the same rules as the field
that shows it. An id's prefix names its kind; a billing kind (orders, payment
methods) needs a billing role first, and anything the caller may not see,
malformed or not, is NOT_FOUND, so no id of another tenant is confirmed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry

from billing.access import plausible_id, require_billing
from billing.catalog import plans_by_id, products_by_id
from billing.customers import CustomerView
from billing.errors import NotFound
from resolvers.tenancy import viewer
from schema.billing import PaymentMethod
from schema.catalog import Plan, Product
from schema.context import Info
from schema.node import Node
from schema.orders import Order
from schema.tenancy import Customer, Partner

__all__ = ["node"]


async def _viewer(info: Info, id: str) -> Node | None:
    return viewer(info) if id == info.context.caller().user_id else None


async def _partner(info: Info, id: str) -> Node | None:
    principal = info.context.caller()
    return Partner(id=strawberry.ID(id), name=principal.partner_name) if id == principal.partner_id else None


async def _visible_customer(info: Info, customer_id: str) -> CustomerView | None:
    customer = await info.context.loaders.customers.load(customer_id)
    return customer if customer is not None and customer.partner_id == info.context.caller().partner_id else None


async def _customer(info: Info, id: str) -> Node | None:
    customer = await _visible_customer(info, id)
    return Customer(id=strawberry.ID(customer.id), name=customer.name) if customer else None


async def _plan(info: Info, id: str) -> Node | None:
    # The catalogue is the same for every partner.
    plan = (await plans_by_id(info.context.db, [id])).get(id)
    return Plan.of(plan) if plan else None


async def _product(info: Info, id: str) -> Node | None:
    product = (await products_by_id(info.context.db, [id])).get(id)
    if product is None or not await _visible_customer(info, product.customer_id):
        return None
    return Product.of(product)


async def _order(info: Info, id: str) -> Node | None:
    principal = info.context.caller()
    require_billing(principal)
    order = await info.context.loaders.orders.load(id)
    return Order.of(order) if order is not None and order.partner_id == principal.partner_id else None


async def _payment_method(info: Info, id: str) -> Node | None:
    require_billing(info.context.caller())
    method = await info.context.loaders.payment_methods.load(id)
    if method is None or not await _visible_customer(info, method.customer_id):
        return None
    return PaymentMethod.of(method)


_BY_PREFIX: dict[str, Callable[[Info, str], Awaitable[Node | None]]] = {
    "usr": _viewer,
    "ptn": _partner,
    "cst": _customer,
    "plan": _plan,
    "prd": _product,
    "ord": _order,
    "pm": _payment_method,
}


async def node(
    info: Info,
    id: Annotated[
        strawberry.ID,
        strawberry.argument(description="Any object's id: `usr_`, `ptn_`, `cst_`, `plan_`, `prd_`, `ord_`, `pm_`…"),
    ],
) -> Node | None:
    """The object with this id, if the caller may see it."""
    info.context.caller()  # UNAUTHENTICATED before anything else
    fetch = _BY_PREFIX.get(id.partition("_")[0]) if plausible_id(id) else None
    found = await fetch(info, id) if fetch is not None else None
    if found is None:
        raise NotFound("Nothing you may see has this id.")
    return found

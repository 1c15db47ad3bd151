"""``Node``: Relay's interface for objects that have a globally unique id,
so a client (Relay, Apollo's cache, urql's graphcache) can refetch any of
them with ``node(id:)``. The gateway's ids are unique across kinds already:
their prefix names the kind (``cst_``, ``prd_``, ``ord_``…)."""

from __future__ import annotations

import strawberry

__all__ = ["Node"]


@strawberry.interface(
    description=(
        "An object with an id unique across every type; `node(id:)` fetches it again. "
        "Implemented by Viewer, Partner, Customer, Plan, Product, Order and PaymentMethod."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="Opaque and stable; the same in every query, subscription and `seed-demo`'s output."
    )

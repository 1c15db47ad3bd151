from __future__ import annotations

import strawberry

from billing.customers import customers_page
from schema.arguments import After, First
from schema.context import Info
from schema.pagination import page_info, page_size
from schema.tenancy import Customer, CustomerConnection, CustomerEdge, Partner, Viewer

__all__ = ["customers", "viewer"]


def viewer(info: Info) -> Viewer:
    principal = info.context.caller()
    return Viewer(
        id=strawberry.ID(principal.user_id),
        email=principal.email,
        role=principal.role,
        partner=Partner(id=strawberry.ID(principal.partner_id), name=principal.partner_name),
    )


async def customers(info: Info, first: First = None, after: After = None) -> CustomerConnection:
    """The caller's partner's customers, by name."""
    principal = info.context.caller()
    limit = page_size(first, info.context.settings.max_page_size)
    cursors, scope = info.context.cursors, principal.partner_id
    key = None
    if after is not None:
        name, customer_id = cursors.decode(after, "cst", scope, 2)
        key = (str(name), str(customer_id))
    rows = await customers_page(info.context.db, principal.partner_id, after=key, limit=limit + 1)
    edges = [
        CustomerEdge(
            cursor=cursors.encode("cst", scope, c.name, c.id), node=Customer(id=strawberry.ID(c.id), name=c.name)
        )
        for c in rows[:limit]
    ]
    return CustomerConnection(
        edges=edges,
        page_info=page_info([edge.cursor for edge in edges], has_next_page=len(rows) > limit, after=after),
    )

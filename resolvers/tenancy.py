from __future__ import annotations

import strawberry
from sqlmodel import col, or_, select

from models import Customer as CustomerRow
from models import Partner as PartnerRow
from schema.context import Info
from schema.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from schema.tenancy import Customer, CustomerConnection, CustomerEdge, Partner, Viewer

__all__ = ["customers", "viewer"]


async def viewer(info: Info) -> Viewer:
    principal = info.context.caller()
    async with info.context.services.db.read() as session:
        partner = await session.get(PartnerRow, principal.partner_id)
    assert partner is not None
    return Viewer(
        id=strawberry.ID(principal.user_id),
        email=principal.email,
        role=principal.role,
        partner=Partner(id=strawberry.ID(partner.id), name=partner.name),
    )


async def customers(info: Info, first: int | None = None, after: str | None = None) -> CustomerConnection:
    """The caller's partner's customers, by name."""
    principal = info.context.caller()
    limit = page_size(first, info.context.settings.max_page_size)
    query = select(CustomerRow).where(CustomerRow.partner_id == principal.partner_id)
    if after is not None:
        name, customer_id = decode_cursor(after, "cst", 2)
        query = query.where(
            or_(
                col(CustomerRow.name) > name,
                (col(CustomerRow.name) == name) & (col(CustomerRow.id) > customer_id),
            )
        )
    async with info.context.services.db.read() as session:
        rows = list(
            (await session.exec(query.order_by(col(CustomerRow.name), col(CustomerRow.id)).limit(limit + 1))).all()
        )
    edges = [
        CustomerEdge(cursor=encode_cursor("cst", c.name, c.id), node=Customer(id=strawberry.ID(c.id), name=c.name))
        for c in rows[:limit]
    ]
    return CustomerConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(rows) > limit, end_cursor=edges[-1].cursor if edges else None),
    )

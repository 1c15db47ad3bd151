from __future__ import annotations

from billing.audit_log import audit_page
from billing.errors import Forbidden
from models import PartnerRole
from resolvers.common import caller_and_customer
from schema.arguments import After, First, OptionalActingCustomer
from schema.audit import AuditEntry, AuditEntryConnection, AuditEntryEdge, audit_entry_id
from schema.context import Info
from schema.pagination import page_info, page_size

__all__ = ["audit_log"]


async def audit_log(
    info: Info, acting_customer: OptionalActingCustomer = None, first: First = None, after: After = None
) -> AuditEntryConnection:
    """The partner's audit trail, or one customer's, newest first (Partner Owners only)."""
    principal = info.context.caller()
    # The role first: a refused caller learns nothing about which ids exist.
    if principal.role is not PartnerRole.PARTNER_OWNER:
        raise Forbidden("Only Partner Owners may read the audit trail.")
    customer_id = None
    if acting_customer is not None:
        _, customer = await caller_and_customer(info, acting_customer, billing=False)
        customer_id = customer.id
    cursors, scope = info.context.cursors, principal.partner_id
    limit = page_size(first, info.context.settings.max_page_size)
    before = cursors.decode_int(after, "aud", scope) if after is not None else None
    rows = await audit_page(
        info.context.db, principal.partner_id, customer_id=customer_id, before=before, limit=limit + 1
    )
    edges = [
        AuditEntryEdge(
            cursor=cursors.encode("aud", scope, row.id),
            node=AuditEntry.of(row, id=audit_entry_id(cursors, scope, row.id)),
        )
        for row in rows[:limit]
    ]
    return AuditEntryConnection(
        edges=edges,
        page_info=page_info([edge.cursor for edge in edges], has_next_page=len(rows) > limit, after=after),
    )

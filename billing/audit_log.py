"""Reading the audit trail (``auditLog``): a partner's entries, or one of its
customers', newest first, a page at a time. Entries are only ever added
(``billing.audit``); nothing here or anywhere else changes or deletes one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, select

from models import PartnerRole
from models.database import Connection, Query, Row
from models.tables import audit_entries, customers, users

__all__ = ["AuditEntryView", "audit_page"]


@dataclass(frozen=True, slots=True)
class AuditEntryView:
    id: int
    occurred_at: datetime
    # Who acted: None when the system did (a payment confirmation, an operator's command).
    actor_email: str | None
    actor_role: PartnerRole | None
    # The customer acted for, when it is one of the partner's (None: partner-wide).
    customer_id: str | None
    customer_name: str | None
    action: str
    target_id: str | None
    outcome: str


_entries = audit_entries
# One statement a page: the actor's email and the customer's name come along.
# A customer is only joined when it is the entry's partner's, so an entry
# recording a refused attempt on someone else's id names no customer.
_SELECT = select(
    _entries.c.id,
    _entries.c.occurred_at,
    users.c.email,
    _entries.c.role,
    customers.c.id,
    customers.c.name,
    _entries.c.action,
    _entries.c.target_id,
    _entries.c.outcome,
).select_from(
    _entries.outerjoin(users, users.c.id == _entries.c.user_id).outerjoin(
        customers, and_(customers.c.id == _entries.c.customer_id, customers.c.partner_id == _entries.c.partner_id)
    )
)
_PARTNER = _entries.c.partner_id == bindparam("partner_id")
_CUSTOMER = _entries.c.customer_id == bindparam("customer_id")
_BEFORE = _entries.c.id < bindparam("before")


def _page(*conditions: object) -> Query:
    return Query(
        _SELECT.where(_PARTNER, *conditions)  # type: ignore[arg-type]
        .order_by(_entries.c.id.desc())
        .limit(bindparam("limit"))
    )


_PAGES = {
    (False, False): _page(),
    (True, False): _page(_CUSTOMER),
    (False, True): _page(_BEFORE),
    (True, True): _page(_CUSTOMER, _BEFORE),
}


def _view(row: Row) -> AuditEntryView:
    id_, occurred_at, email, role, customer_id, customer_name, action, target_id, outcome = row
    acted = email is not None and role is not None
    return AuditEntryView(
        id_,
        occurred_at,
        email if acted else None,
        PartnerRole(role) if acted else None,
        customer_id,
        customer_name,
        action,
        target_id,
        outcome,
    )


async def audit_page(
    conn: Connection, partner_id: str, *, customer_id: str | None, before: int | None, limit: int
) -> list[AuditEntryView]:
    """Up to ``limit`` entries of the partner (or of one of its customers),
    newest first, older than entry ``before`` when given."""
    params: dict[str, object] = {"partner_id": partner_id, "limit": limit}
    if customer_id is not None:
        params["customer_id"] = customer_id
    if before is not None:
        params["before"] = before
    rows = await conn.all(_PAGES[(customer_id is not None, before is not None)], **params)
    return [_view(row) for row in rows]

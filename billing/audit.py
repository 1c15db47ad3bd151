"""The audit trail: written inside the transaction whose outcome it records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth.principal import Principal
from billing.access import require_billing
from billing.errors import UserErrors
from models.base import utcnow
from models.database import Connection, Query, insert_into
from models.tables import audit_entries

if TYPE_CHECKING:
    from billing.services import BillingServices

__all__ = ["record", "record_refusal", "require_billing_role"]

_INSERT = Query(insert_into(audit_entries, skip=("id",)))


async def record(
    tx: Connection,
    *,
    partner_id: str,
    action: str,
    outcome: str,
    principal: Principal | None = None,
    customer_id: str | None = None,
    target_id: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """Add an entry (inside ``tx``'s transaction, or on its own when there is none)."""
    await tx.write(
        _INSERT,
        occurred_at=utcnow(),
        partner_id=partner_id,
        user_id=principal.user_id if principal else None,
        role=principal.role.value if principal else None,
        customer_id=customer_id,
        action=action,
        target_id=target_id,
        outcome=outcome,
        detail=detail or {},
    )


async def record_refusal(
    conn: Connection, principal: Principal, *, customer_id: str, action: str, errors: UserErrors
) -> UserErrors:
    """Record that ``action`` was refused with ``errors`` (the first one's code); returns them."""
    await record(
        conn,
        partner_id=principal.partner_id,
        principal=principal,
        customer_id=_storable(customer_id),
        action=action,
        outcome=errors.errors[0].code,
    )
    return errors


async def require_billing_role(
    services: BillingServices, conn: Connection, principal: Principal, *, customer_id: str, action: str
) -> None:
    """Refuse (FORBIDDEN) a billing action the caller's role may not take,
    recording the attempt: refusals belong in the trail too."""
    if principal.role.may_bill:
        return
    await record(
        conn,
        partner_id=principal.partner_id,
        principal=principal,
        customer_id=_storable(customer_id),
        action=action,
        outcome="FORBIDDEN",
    )
    require_billing(principal)


def _storable(customer_id: str) -> str:
    """An id as given by the caller, safe to store (bounded, printable)."""
    return "".join(ch if ch.isprintable() and ch.isascii() else "?" for ch in customer_id[:40])

"""Write audit entries; always inside the transaction whose outcome they record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from auth.principal import Principal
from billing.access import require_billing
from models import AuditEntry

if TYPE_CHECKING:
    from billing.services import BillingServices

__all__ = ["record", "require_billing_role"]


async def record(
    session: AsyncSession,
    *,
    partner_id: str,
    action: str,
    outcome: str,
    principal: Principal | None = None,
    customer_id: str | None = None,
    target_id: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    session.add(
        AuditEntry(
            partner_id=partner_id,
            user_id=principal.user_id if principal else None,
            role=principal.role.value if principal else None,
            customer_id=customer_id,
            action=action,
            target_id=target_id,
            outcome=outcome,
            detail=detail or {},
        )
    )


async def require_billing_role(
    services: BillingServices, principal: Principal, *, customer_id: str, action: str
) -> None:
    """Refuse (FORBIDDEN) a billing action the caller's role may not take,
    recording the attempt: refusals belong in the trail too."""
    if principal.role.may_bill:
        return
    async with services.db.write() as session:
        await record(
            session,
            partner_id=principal.partner_id,
            principal=principal,
            customer_id=customer_id[:40],
            action=action,
            outcome="FORBIDDEN",
        )
    require_billing(principal)

"""Write audit entries; always inside the transaction whose outcome they record."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from auth.principal import Principal
from models import AuditEntry

__all__ = ["record"]


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

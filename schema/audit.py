"""The audit trail as the API shows it (API.md, "Audit trail")."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing.audit_log import AuditEntryView
from models import PartnerRole
from schema.cursors import CursorCodec
from schema.pagination import PageInfo
from schema.tenancy import Customer

__all__ = ["AuditActor", "AuditEntry", "AuditEntryConnection", "AuditEntryEdge", "audit_entry_id"]


@strawberry.type(description="The partner user who acted, with their role at the time.")
class AuditActor:
    email: str = strawberry.field(description="The user's sign-in email.")
    role: PartnerRole = strawberry.field(description="Their role when they acted.")


@strawberry.type(description="One recorded action. Entries are never changed or deleted.")
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Opaque and stable.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    actor: AuditActor | None = strawberry.field(
        description="Null when the system acted (a payment confirmation, an operator's command)."
    )
    customer: Customer | None = strawberry.field(description="Null for partner-wide actions.")
    action: str = strawberry.field(
        description='What was done, as subject.verb: "order.buy_licenses", "order.upgrade_storage", '
        '"order.renewal", "order.status_changed", "payment_method.add", "payment_method.set_primary", '
        '"payment_method.remove", "product.…" (license changes, cancel, resume, renewal).'
    )
    target_id: str | None = strawberry.field(description="The id of what it was done to (an order, a card, a product).")
    outcome: str = strawberry.field(
        description='How it ended: "OK", "PLACED" (an order), the order or product status reached, '
        '"FORBIDDEN", or the userErrors code of a refusal.'
    )

    @classmethod
    def of(cls, view: AuditEntryView, *, id: str) -> AuditEntry:
        actor = None
        if view.actor_email is not None and view.actor_role is not None:
            actor = AuditActor(email=view.actor_email, role=view.actor_role)
        customer = None
        if view.customer_id is not None and view.customer_name is not None:
            customer = Customer(id=strawberry.ID(view.customer_id), name=view.customer_name)
        return cls(
            id=strawberry.ID(id),
            occurred_at=view.occurred_at,
            actor=actor,
            customer=customer,
            action=view.action,
            target_id=view.target_id,
            outcome=view.outcome,
        )


def audit_entry_id(cursors: CursorCodec, partner_id: str, entry_id: int) -> str:
    """Entry ids are sealed like cursors: the raw ones count every partner's entries."""
    return cursors.encode("audit-entry", partner_id, entry_id)


@strawberry.type(description="An entry in a page of the audit trail.")
class AuditEntryEdge:
    cursor: str = strawberry.field(description="Opaque; pass it as `after` to continue after this entry.")
    node: AuditEntry = strawberry.field(description="The entry.")


@strawberry.type(description="A page of the audit trail, newest first (Relay connection).")
class AuditEntryConnection:
    edges: list[AuditEntryEdge] = strawberry.field(description="The entries of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page stands: is there a next one, and its cursors.")

"""Create partners, customers, users, tokens and products (the CLI's work)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth.tokens import issue_token
from billing import tokens as token_admin
from billing.errors import BadUserInput, NotFound
from billing.periods import current_period
from models import BillingInterval, Customer, Partner, PartnerRole, Plan, Product, User
from models.base import utcnow
from models.database import Database

__all__ = [
    "DemoTenant",
    "create_customer",
    "create_partner",
    "create_token",
    "create_user",
    "demo_email",
    "seed_demo",
]


async def create_partner(session: AsyncSession, *, name: str) -> Partner:
    if not name.strip():
        raise BadUserInput("A partner needs a name.")
    partner = Partner(name=name.strip())
    session.add(partner)
    return partner


async def create_customer(session: AsyncSession, *, partner_id: str, name: str) -> Customer:
    if await session.get(Partner, partner_id) is None:
        raise NotFound(f"No partner {partner_id!r}.")
    if not name.strip():
        raise BadUserInput("A customer needs a name.")
    customer = Customer(partner_id=partner_id, name=name.strip())
    session.add(customer)
    return customer


async def create_user(session: AsyncSession, *, partner_id: str, email: str, role: PartnerRole) -> User:
    if await session.get(Partner, partner_id) is None:
        raise NotFound(f"No partner {partner_id!r}.")
    email = email.strip().lower()
    if "@" not in email:
        raise BadUserInput(f"{email!r} is not an email address.")
    if (await session.exec(select(User.id).where(User.email == email))).first() is not None:
        raise BadUserInput(f"The email {email} is already in use.")
    user = User(partner_id=partner_id, email=email, role=role)
    session.add(user)
    return user


async def create_token(session: AsyncSession, *, user_id: str, label: str = "") -> str:
    return (await token_admin.create_token(session, user_id=user_id, label=label)).token


async def create_product(
    session: AsyncSession,
    *,
    customer_id: str,
    plan_id: str,
    interval: BillingInterval,
    total: int,
    assigned: int,
    anchor: datetime,
) -> Product:
    """A product billed from ``anchor``, its current period paid (as if every
    renewal since ``anchor`` had succeeded)."""
    plan = await session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"No plan {plan_id!r}.")
    period = current_period(anchor, interval, utcnow())
    product = Product(
        customer_id=customer_id,
        plan_id=plan.id,
        plan_kind=plan.kind,
        billing_interval=interval,
        total_licenses=total,
        assigned_licenses=assigned,
        period_anchor=anchor,
        current_period_start=period.start,
        current_period_end=period.end,
        next_renewal_at=period.end,
    )
    session.add(product)
    return product


@dataclass(frozen=True)
class DemoTenant:
    partner: Partner
    customers: list[Customer]
    tokens: dict[str, str]
    products: list[Product] = field(default_factory=list)  # not in as_json(): API.md fixes its shape

    def as_json(self) -> dict[str, object]:
        return {
            "partner": {"id": self.partner.id, "name": self.partner.name},
            "customers": [{"id": c.id, "name": c.name} for c in self.customers],
            "tokens": self.tokens,
        }


async def seed_demo(db: Database, *, suffix: str | None = None) -> DemoTenant:
    """A new demo partner: two customers with a product each, one user per role.

    Named ``Demo MSP <suffix>`` with users ``<role>@demo-<suffix>.example``;
    the suffix is random unless given (``billing.demo`` gives a fixed one).
    """
    suffix = secrets.token_hex(3) if suffix is None else suffix
    now = utcnow()
    async with db.orm(write=True) as session:
        partner = await create_partner(session, name=f"Demo MSP {suffix}")
        acme = await create_customer(session, partner_id=partner.id, name="Acme Dental")
        globex = await create_customer(session, partner_id=partner.id, name="Globex Logistics")
        await session.flush()
        acme_product = await create_product(
            session,
            customer_id=acme.id,
            plan_id="plan_backup_professional",
            interval=BillingInterval.MONTHLY,
            total=10,
            assigned=7,
            anchor=now - timedelta(days=10),
        )
        globex_product = await create_product(
            session,
            customer_id=globex.id,
            plan_id="plan_backup_essentials",
            interval=BillingInterval.YEARLY,
            total=25,
            assigned=20,
            anchor=now - timedelta(days=100),
        )
        tokens: dict[str, str] = {}
        for role in PartnerRole:
            user = await create_user(session, partner_id=partner.id, email=demo_email(role, suffix), role=role)
            await session.flush()
            tokens[role.value] = await issue_token(session, user_id=user.id, label="seed-demo")
    return DemoTenant(partner=partner, customers=[acme, globex], tokens=tokens, products=[acme_product, globex_product])


def demo_email(role: PartnerRole, suffix: str) -> str:
    local = role.value.lower().replace("partner_", "").replace("_", "-")
    return f"{local}@demo-{suffix}.example"

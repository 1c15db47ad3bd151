"""The demo partner of ``partner-billing demo`` (``scripts/demo``), kept across runs.

``seed-demo`` makes a new partner at every call (API.md says so: scripts rely
on a clean tenant). ``demo`` is what a person runs again and again on the same
``data/`` database, so it makes its partner once, recognised afterwards by the
owner's fixed email, and reuses it with its customers, products and any orders
placed since.

Tokens are stored only as hashes, so the earlier ones cannot be printed
again: each run issues a fresh token per role and leaves the earlier ones
valid (a GraphiQL tab or a script still using yesterday's token keeps
working). ``partner-billing create-token`` does the same for one user.
"""

from __future__ import annotations

from sqlmodel import col, select

from auth.tokens import issue_token
from billing.onboarding import DemoTenant, create_user, demo_email, seed_demo
from models import Customer, Partner, PartnerRole, Product, User
from models.database import Database

__all__ = ["DEMO_SUFFIX", "open_demo"]

DEMO_SUFFIX = "local"  # partner "Demo MSP local", users <role>@demo-local.example


async def open_demo(db: Database) -> tuple[DemoTenant, bool]:
    """The demo partner with a fresh token per role, and whether it existed already."""
    owner_email = demo_email(PartnerRole.PARTNER_OWNER, DEMO_SUFFIX)
    async with db.orm(write=True) as session:
        owner = (await session.exec(select(User).where(User.email == owner_email))).first()
        partner = None if owner is None else await session.get(Partner, owner.partner_id)
        if partner is not None:
            customers = list(
                (
                    await session.exec(
                        select(Customer)
                        .where(Customer.partner_id == partner.id)
                        .order_by(col(Customer.created_at), col(Customer.name))
                    )
                ).all()
            )
            products = list(
                (
                    await session.exec(
                        select(Product)
                        .where(col(Product.customer_id).in_([c.id for c in customers]))
                        .order_by(col(Product.created_at), col(Product.id))
                    )
                ).all()
            )
            tokens: dict[str, str] = {}
            for role in PartnerRole:
                email = demo_email(role, DEMO_SUFFIX)
                user = (await session.exec(select(User).where(User.email == email))).first()
                if user is None:  # removed since: the demo needs one user per role
                    user = await create_user(session, partner_id=partner.id, email=email, role=role)
                    await session.flush()
                tokens[role.value] = await issue_token(session, user_id=user.id, label="demo")
            return DemoTenant(partner=partner, customers=customers, tokens=tokens, products=products), True
    return await seed_demo(db, suffix=DEMO_SUFFIX), False

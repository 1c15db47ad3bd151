"""A reference point: the dashboard read as a plain Strawberry app would serve it.

A minimal Strawberry + Starlette application (Strawberry's own ASGI view, its
``ParserCache`` and ``ValidationCache`` extensions, typed resolvers) answering
the same query shape as the gateway's dashboard read from the same SQLite file
with three aiosqlite reads on one shared connection: the caller's token, then
one per root field (its rows, joined to the customer for the tenant check).
No DataLoaders, no compiled plans, no access rules beyond the tenant check,
no audit, metrics or request ids. The issue cites it at about 10% of the
floor's requests/s on this machine.

``bench/run.py`` serves it as the Procfile serves the gateway, with
``PLAIN_DATABASE`` naming the SQLite file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import aiosqlite
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info

__all__ = ["app"]

# As the gateway and the floor: uvicorn's loggers at LOG_LEVEL (no access lines at WARNING).
for _name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
    logging.getLogger(_name).setLevel(os.environ.get("LOG_LEVEL", "WARNING"))


@strawberry.enum
class PartnerRole(Enum):
    PARTNER_OWNER = "PARTNER_OWNER"
    PARTNER_FINANCE_ADMIN = "PARTNER_FINANCE_ADMIN"
    PARTNER_ADMIN = "PARTNER_ADMIN"


@strawberry.enum
class BillingInterval(Enum):
    MONTHLY = "MONTHLY"
    YEARLY = "YEARLY"


@strawberry.enum
class PlanKind(Enum):
    BACKUP = "BACKUP"
    CLOUD_STORAGE = "CLOUD_STORAGE"


def _instant(stored: str) -> str:
    """A stored UTC timestamp as the gateway's DateTime shows it (milliseconds, ``Z``)."""
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _amount(minor: int) -> str:
    whole, fraction = divmod(abs(minor), 100)
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:02d}"


@strawberry.type
class Partner:
    id: strawberry.ID
    name: str


@strawberry.type
class Viewer:
    id: strawberry.ID
    email: str
    role: PartnerRole
    partner: Partner


@strawberry.type
class Money:
    amount: str
    currency: str


@strawberry.type
class Plan:
    id: strawberry.ID
    name: str
    kind: PlanKind
    monthly_minor: strawberry.Private[int]
    yearly_minor: strawberry.Private[int]
    currency: strawberry.Private[str]

    @strawberry.field
    def price(self, interval: BillingInterval) -> Money:
        minor = self.monthly_minor if interval is BillingInterval.MONTHLY else self.yearly_minor
        return Money(amount=_amount(minor), currency=self.currency)


@strawberry.type
class Product:
    id: strawberry.ID
    billing_interval: BillingInterval
    total_licenses: int
    assigned_licenses: int
    available_licenses: int
    current_period_end: str
    plan: Plan


@strawberry.type
class PaymentMethod:
    id: strawberry.ID
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_primary: bool


@strawberry.type
class BillingDetails:
    payment_methods: list[PaymentMethod]


def _db(info: Info) -> aiosqlite.Connection:
    db: aiosqlite.Connection = info.context["request"].app.state.db
    return db


def _partner(info: Info) -> str:
    caller = info.context["caller"]
    if caller is None:
        raise PermissionError("Sign in with a bearer token.")
    return str(caller["partner_id"])


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self, info: Info) -> Viewer:
        caller = info.context["caller"]
        if caller is None:
            raise PermissionError("Sign in with a bearer token.")
        partner = Partner(id=strawberry.ID(caller["partner_id"]), name=caller["partner_name"])
        return Viewer(
            id=strawberry.ID(caller["id"]), email=caller["email"], role=PartnerRole(caller["role"]), partner=partner
        )

    @strawberry.field
    async def products(self, info: Info, acting_customer: strawberry.ID) -> list[Product]:
        query = (
            "SELECT p.id, p.billing_interval, p.total_licenses, p.assigned_licenses, p.current_period_end,"
            " l.id, l.name, l.kind, l.monthly_price_minor, l.yearly_price_minor, l.currency"
            " FROM products p JOIN plans l ON l.id = p.plan_id JOIN customers c ON c.id = p.customer_id"
            " WHERE p.customer_id = ? AND c.partner_id = ? ORDER BY p.created_at, p.id"
        )
        async with _db(info).execute(query, (acting_customer, _partner(info))) as cursor:
            rows = await cursor.fetchall()
        return [
            Product(
                id=strawberry.ID(r[0]),
                billing_interval=BillingInterval(r[1]),
                total_licenses=r[2],
                assigned_licenses=r[3],
                available_licenses=r[2] - r[3],
                current_period_end=_instant(r[4]),
                plan=Plan(
                    id=strawberry.ID(r[5]),
                    name=r[6],
                    kind=PlanKind(r[7]),
                    monthly_minor=r[8],
                    yearly_minor=r[9],
                    currency=r[10],
                ),
            )
            for r in rows
        ]

    @strawberry.field
    async def billing_details(self, info: Info, acting_customer: strawberry.ID) -> BillingDetails:
        query = (
            "SELECT m.id, m.brand, m.last4, m.exp_month, m.exp_year, m.is_primary FROM payment_methods m"
            " JOIN customers c ON c.id = m.customer_id"
            " WHERE m.customer_id = ? AND c.partner_id = ? AND m.removed_at IS NULL ORDER BY m.created_at, m.id"
        )
        async with _db(info).execute(query, (acting_customer, _partner(info))) as cursor:
            rows = await cursor.fetchall()
        cards = [
            PaymentMethod(
                id=strawberry.ID(r[0]), brand=r[1], last4=r[2], exp_month=r[3], exp_year=r[4], is_primary=bool(r[5])
            )
            for r in rows
        ]
        return BillingDetails(payment_methods=cards)


_CALLER = (
    "SELECT u.id, u.email, u.partner_id, p.name, u.role FROM api_tokens t"
    " JOIN users u ON u.id = t.user_id JOIN partners p ON p.id = u.partner_id"
    " WHERE t.token_hash = ? AND t.revoked_at IS NULL"
)


class PlainGraphQL(GraphQL[dict[str, Any], None]):
    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        caller = None
        if scheme.lower() == "bearer" and token:
            digest = hashlib.sha256(token.strip().encode()).hexdigest()
            async with request.app.state.db.execute(_CALLER, (digest,)) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                caller = dict(zip(("id", "email", "partner_id", "partner_name", "role"), row, strict=True))
        return {"request": request, "response": response, "caller": caller}


# Classes, not instances: Strawberry builds them per request; their caches are shared (module level).
schema = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with aiosqlite.connect(os.environ["PLAIN_DATABASE"]) as db:
        app.state.db = db
        yield


async def ready(_request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


app = Starlette(
    routes=[Route("/graphql", PlainGraphQL(schema, graphql_ide=None)), Route("/readyz", ready)],
    lifespan=lifespan,
)

"""The fuzz tests' target: one real gateway process (uvicorn, as the Procfile
runs it) on a PostgreSQL database of its own, the database that refuses NUL
bytes in text, so a hostile value that slips through to the driver shows.
It runs in its own process so that a request that stalls it fails the test
on the client's timeout instead of stalling the test too, and its log is read
afterwards: an unexpected exception is a finding even when the answer hid it.

Seeded with a demo partner (a token per role, an expired token, a card, an
order) and a second partner whose ids the first may not see, so generated
documents reach real rows and the tenancy checks, not only NOT_FOUND.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.tokens import issue_token
from billing.onboarding import create_user, seed_demo
from models import PartnerRole
from models.base import utcnow
from models.database import Database
from tests.fuzz.target import FuzzTarget, Seeded
from tests.scale.conftest import PostgresServer, postgres  # noqa: F401 - fixture
from tests.support.processes import GatewayProcess

ADD_CARD = """
mutation($c: ID!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa"}) { paymentMethod { id } }
}"""
BUY = """
mutation($c: ID!, $p: ID!) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: 1}) { order { id } userErrors { code } }
}"""


async def _seed(database_url: str) -> tuple[Any, Any, str]:
    db = Database(database_url)
    try:
        tenant = await seed_demo(db)
        stranger = await seed_demo(db)
        async with db.orm(write=True) as session:
            user = await create_user(
                session, partner_id=tenant.partner.id, email="expired@fuzz.example", role=PartnerRole.PARTNER_OWNER
            )
            await session.flush()
            expired = await issue_token(session, user_id=user.id, expires_at=utcnow() - timedelta(days=1))
        return tenant, stranger, expired
    finally:
        await db.dispose()


def _in_thread(coroutine: Any) -> Any:
    """Run a coroutine in a thread of its own, clear of pytest-asyncio's loops."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def _graphql(http: httpx.Client, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables}, headers=_bearer(token))
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def fuzz_target(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:  # noqa: F811
    name = postgres.create_database()
    database_url = postgres.url(name)
    # A rate limit no test reaches, so every request still goes through the
    # limiter (the cost of a mutation is counted from its document).
    env = {"DATABASE_URL": database_url, "RATE_LIMIT": "1000000/minute", "LOG_LEVEL": "WARNING"}
    process = GatewayProcess("fuzz", env, Path(tmp_path_factory.mktemp("fuzz")))
    try:
        process.start()
        tenant, stranger, expired = _in_thread(_seed(database_url))
        owner = tenant.tokens["PARTNER_OWNER"]
        customer = tenant.customers[0].id
        product = tenant.products[0].id
        with httpx.Client(base_url=process.url, timeout=30) as http:
            card = _graphql(http, owner, ADD_CARD, {"c": customer})["addPaymentMethod"]["paymentMethod"]["id"]
            bought = _graphql(http, owner, BUY, {"c": customer, "p": product})["buyLicenses"]
            assert bought["userErrors"] == [], bought
        seeded = Seeded(
            tokens={**tenant.tokens, "EXPIRED": expired, "OTHER_PARTNER": stranger.tokens["PARTNER_OWNER"]},
            customers=[c.id for c in tenant.customers],
            products=[p.id for p in tenant.products],
            payment_methods=[card],
            orders=[bought["order"]["id"]],
            strangers=[stranger.customers[0].id, stranger.products[0].id],
        )
        target = FuzzTarget(process, seeded)
        try:
            yield target
        finally:
            target.close()
    finally:
        process.stop()
        postgres.drop_database(name)

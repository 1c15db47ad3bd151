"""One primary card per customer, on PostgreSQL too: the code path (the
customer row locked around each change) and the schema (a partial unique
index, which migration 0002 adds after clearing older duplicates)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from billing.onboarding import seed_demo
from migrations.runner import head_revision, migrate
from models import Customer, Partner, PaymentMethod
from models.database import Database
from tests.scale.helpers import assert_clean_logs
from tests.support.processes import GatewayProcess, running_gateways

ADD_PRIMARY = """
mutation($c: ID!, $t: String!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: $t, makePrimary: true}) {
    paymentMethod { id isPrimary } userErrors { code }
  }
}"""
BILLING = "query($c: ID!) { billingDetails(actingCustomer: $c) { paymentMethods { id isPrimary } } }"
CARDS = ("pm_card_visa", "pm_card_mastercard", "pm_card_amex")


@pytest.fixture(scope="module")
def instances(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[GatewayProcess]]:
    env = {"DATABASE_URL": pg_url, "BROADCAST_URL": redis_url}
    with running_gateways(["A", "B"], env, Path(tmp_path_factory.mktemp("logs"))) as gateways:
        yield gateways


async def _active(db: Database, customer_id: str) -> list[PaymentMethod]:
    async with db.orm() as session:
        query = select(PaymentMethod).where(
            col(PaymentMethod.customer_id) == customer_id, col(PaymentMethod.removed_at).is_(None)
        )
        return list((await session.exec(query)).all())


@pytest.mark.postgres
@pytest.mark.redis
async def test_twenty_concurrent_make_primary_across_two_instances_leave_one_primary(
    instances: list[GatewayProcess], pg_db: Database
) -> None:
    tenant = await seed_demo(pg_db)
    customer, token = tenant.customers[0].id, tenant.tokens["PARTNER_OWNER"]
    async with instances[0].client(token) as a, instances[1].client(token) as b:
        results = await asyncio.gather(
            *((a, b)[n % 2].data(ADD_PRIMARY, {"c": customer, "t": CARDS[n % 3]}) for n in range(20))
        )
        assert all(r["addPaymentMethod"]["userErrors"] == [] for r in results), results
        shown = (await a.data(BILLING, {"c": customer}))["billingDetails"]["paymentMethods"]

    stored = await _active(pg_db, customer)
    assert len(stored) == 20
    assert sum(m.is_primary for m in stored) == 1
    assert sum(m["isPrimary"] for m in shown) == 1
    # The last one to commit is the primary one.
    newest = max(stored, key=lambda m: (m.created_at, m.id))
    assert newest.is_primary
    assert_clean_logs(*instances)


def _card(customer_id: str, *, primary: bool, age_s: int, removed: bool = False) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "customer_id": customer_id,
        "provider_ref": "pm_ref",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2040,
        "is_primary": primary,
        "created_at": now - timedelta(seconds=age_s),
        "removed_at": now if removed else None,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'cards.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_pg_url")
    )
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


async def _insert(db: Database, card: dict[str, object]) -> str:
    method = PaymentMethod(**card)  # type: ignore[arg-type]
    async with db.orm(write=True) as session:
        session.add(method)
    return method.id


async def _customers(db: Database) -> tuple[str, str]:
    """Two customers of a new partner (tables migration 0001 already had)."""
    partner = Partner(name="Cards MSP")
    first, second = Customer(partner_id=partner.id, name="One"), Customer(partner_id=partner.id, name="Two")
    async with db.orm(write=True) as session:
        session.add(partner)
        await session.flush()
        session.add_all([first, second])
    return first.id, second.id


async def test_the_index_refuses_a_second_primary_card(any_db: Database) -> None:
    await migrate(any_db)
    customer, other = await _customers(any_db)
    await _insert(any_db, _card(customer, primary=True, age_s=10))
    await _insert(any_db, _card(customer, primary=False, age_s=5))
    await _insert(any_db, _card(customer, primary=True, age_s=5, removed=True))  # removed ones do not count
    await _insert(any_db, _card(other, primary=True, age_s=5))  # nor other customers'

    with pytest.raises(Exception, match=r"(?i)unique|payment_methods_one_primary") as refused:
        await _insert(any_db, _card(customer, primary=True, age_s=1))
    assert "IntegrityError" in type(refused.value).__name__
    assert sum(m.is_primary for m in await _active(any_db, customer)) == 1


async def test_migration_0002_keeps_only_the_newest_primary_card(any_db: Database) -> None:
    await migrate(any_db, "0001")
    customer, other = await _customers(any_db)
    ids = [await _insert(any_db, _card(customer, primary=True, age_s=age)) for age in (30, 20, 10)]
    lone = await _insert(any_db, _card(other, primary=True, age_s=40))

    assert await migrate(any_db) == head_revision()

    primaries = {m.id for m in await _active(any_db, customer) if m.is_primary}
    assert primaries == {ids[-1]}
    assert {m.id for m in await _active(any_db, other) if m.is_primary} == {lone}
    async with any_db.engine().connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM payment_methods"))).scalar() == 4

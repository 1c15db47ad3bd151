"""Several instances running the renewal pass at the same moment on one
PostgreSQL database: every period is charged once, and every failed attempt
counted once.

Two kinds of instance: in-process ones (each its own pool, provider and
services, as separate processes would have; ``asyncio.gather`` interleaves
them at every statement), and ``partner-billing renew`` processes started
together, as cron jobs on several machines would be.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import func, select

from billing.renewals import RenewalReport, count_settled, renew_due_products
from billing.services import BillingServices
from billing.settlement import apply_payment_outcome
from events.log import NullNotifier
from models import Order, OrderKind, Product, SandboxPayment
from models.database import Database
from payments.provider import PaymentOutcome
from payments.sandbox import SandboxPaymentProvider
from tests.api.helpers import add_card, only_product, set_period
from tests.scale.conftest import pg_settings
from tests.support.gateway import GatewayServer, serve_gateway
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.postgres

FEB_10 = datetime(2025, 2, 10, tzinfo=UTC)
AS_OF = datetime(2025, 2, 10, 6, 0, tzinfo=UTC)  # every period below ended at midnight


@dataclass(frozen=True)
class Held:
    customer_id: str
    product_id: str
    declines: bool
    yearly: bool

    @property
    def paid_until(self) -> datetime:
        """The end of the period paid, after the pass."""
        if self.declines:
            return FEB_10
        return FEB_10.replace(year=2026) if self.yearly else FEB_10.replace(month=3)


@pytest.fixture
async def gateway(fresh_pg_url: str) -> AsyncIterator[GatewayServer]:
    async with serve_gateway(pg_settings(fresh_pg_url)) as server:
        yield server


async def customers_due(gateway: GatewayServer, tenants: int) -> list[Held]:
    """``tenants`` demo partners; each customer's product (monthly or yearly)
    due since Feb 10, its card visa, or for every third one a card whose
    charges are declined."""
    held: list[Held] = []
    for _ in range(tenants):
        tenant = await gateway.tenant()
        client = gateway.client(tenant.tokens["PARTNER_OWNER"])
        for customer in tenant.customers:
            declines = len(held) % 3 == 2
            await add_card(client, customer.id, "pm_card_chargeCustomerFail" if declines else "pm_card_visa")
            product = await only_product(client, customer.id)
            yearly = product["billingInterval"] == "YEARLY"
            await set_period(gateway, product["id"], FEB_10.replace(year=2024) if yearly else FEB_10.replace(month=1))
            held.append(Held(customer.id, product["id"], declines, yearly))
    return held


async def renewal_orders(db: Database) -> dict[str, list[Order]]:
    async with db.orm() as session:
        found = (await session.exec(select(Order).where(Order.kind == OrderKind.RENEWAL.value))).all()
    by_product: dict[str, list[Order]] = {}
    for order in found:
        by_product.setdefault(str(order.product_id), []).append(order)
    return by_product


async def charges(db: Database) -> int:
    async with db.orm() as session:
        return int((await session.exec(select(func.count()).select_from(SandboxPayment))).one())


@dataclass
class Instance:
    db: Database
    services: BillingServices
    provider: SandboxPaymentProvider

    @classmethod
    async def start(cls, url: str) -> Instance:
        db = Database(url)
        provider = SandboxPaymentProvider(db, confirm_delay_ms=0)
        services = BillingServices(db=db, provider=provider, notifier=NullNotifier())

        async def on_event(outcome: PaymentOutcome) -> None:
            await apply_payment_outcome(services, db.connection(), outcome)

        await provider.start(on_event)
        return cls(db, services, provider)

    async def renew(self) -> RenewalReport:
        report = await renew_due_products(self.services, now=AS_OF)
        await self.provider.drain()
        return await count_settled(self.services, report)

    async def stop(self) -> None:
        await self.provider.aclose()
        await self.db.dispose()


def assert_each_period_charged_once(held: list[Held], orders: dict[str, list[Order]]) -> None:
    for item in held:
        (order,) = orders[item.product_id]
        assert order.status == ("FAILED" if item.declines else "SUCCEEDED"), order
        assert order.renewal_attempt == 0


async def test_instances_racing_one_pass_charge_each_period_once(gateway: GatewayServer, fresh_pg_url: str) -> None:
    held = await customers_due(gateway, tenants=6)  # 12 products, 4 of them declined
    instances = [await Instance.start(fresh_pg_url) for _ in range(5)]
    try:
        async with asyncio.timeout(120):
            reports = await asyncio.gather(*(instance.renew() for instance in instances))
            again = await asyncio.gather(*(instance.renew() for instance in instances))
    finally:
        await asyncio.gather(*(instance.stop() for instance in instances))

    declined = sum(item.declines for item in held)
    assert sum(r.renewed for r in reports) == len(held) - declined
    assert sum(r.failed for r in reports) == declined
    assert [r.unsettled for r in reports] == [[]] * len(instances)
    assert all((r.renewed, r.failed, r.canceled) == (0, 0, 0) for r in again)
    db = gateway.runtime.db
    assert_each_period_charged_once(held, await renewal_orders(db))
    assert await charges(db) == len(held)
    async with db.orm() as session:
        for item in held:
            product = await session.get(Product, item.product_id)
            assert product is not None
            expected = ("PAST_DUE", 1) if item.declines else ("ACTIVE", 0)
            assert (product.status, product.renewal_attempts) == expected
            assert product.current_period_end == item.paid_until


async def cli_renew(database_url: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROADCAST_URL", "PAYMENT_PROVIDER"}}
    env.update(
        DATABASE_URL=database_url, RENEWAL_INTERVAL_S="0", RECONCILE_INTERVAL_S="0", SANDBOX_CONFIRM_DELAY_MS="0"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "renew",
        "--as-of",
        AS_OF.isoformat(),
        "--json",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_renew_commands_started_together_charge_each_period_once(
    gateway: GatewayServer, fresh_pg_url: str
) -> None:
    held = await customers_due(gateway, tenants=4)

    results = await asyncio.gather(*(cli_renew(fresh_pg_url) for _ in range(3)))

    declined = sum(item.declines for item in held)
    assert sum(r["renewed"] for r in results) == len(held) - declined
    assert sum(r["failed"] for r in results) == declined
    assert_each_period_charged_once(held, await renewal_orders(gateway.runtime.db))
    assert await charges(gateway.runtime.db) == len(held)

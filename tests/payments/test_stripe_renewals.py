"""Renewals through Stripe, against localstripe: each renewal is an off-session
PaymentIntent confirmed at once, settled by the same paths as any purchase
(the charge's answer, the webhook, reconciliation).

The gateway reaches the emulator through ``StripeProxy``, which records what
was sent, so a test can say that the charge was made off-session, for the
order's amount, on the customer's primary card.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from billing.renewals import count_settled, renew_due_products
from models import Order
from tests.api.helpers import add_card, only_product, set_period, wait_for_status
from tests.payments.test_stripe_gateway import (
    REPO_ROOT,
    Shop,
    cli_reconcile,
    delivery_processed,
    intent_id_of,
    only_intent,
    open_shop,
    order_row,
    provider_ref,
    statuses_of,
    stripe_env,
    stripe_gateway,
)
from tests.support.gateway import GatewayServer
from tests.support.localstripe import (
    LocalStripe,
    ProxiedRequest,
    StripeProxy,
    authenticate_payment_intent,
    create_card_payment_method,
    payment_intents_of_order,
    start_localstripe_or_skip,
)

pytestmark = pytest.mark.localstripe

PERIOD_START = datetime(2025, 1, 10, tzinfo=UTC)
PERIOD_END = datetime(2025, 2, 10, tzinfo=UTC)
RENEWAL_AMOUNT = 10 * 750  # Acme: 10 licenses of Backup Professional, monthly


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    emulator = start_localstripe_or_skip()
    yield emulator
    emulator.stop()


@contextlib.asynccontextmanager
async def proxied_gateway(tmp_path: Path, localstripe: LocalStripe) -> AsyncIterator[tuple[GatewayServer, StripeProxy]]:
    async with (
        StripeProxy(localstripe.base_url) as proxy,
        stripe_gateway(tmp_path, localstripe, stripe_api_base=proxy.url) as gateway,
    ):
        yield gateway, proxy


async def due_shop(gateway: GatewayServer, card: str | None) -> Shop:
    """Acme with ``card``, its period ended on Feb 10, 2025; Globex out of the way."""
    shop = await open_shop(gateway, card)
    await set_period(gateway, shop.product_id, PERIOD_START)
    globex = await only_product(shop.client, shop.tenant.customers[1].id)
    await set_period(gateway, globex["id"], datetime(2100, 1, 1, tzinfo=UTC))
    return shop


async def renew(gateway: GatewayServer, at: datetime) -> dict[str, Any]:
    report = await renew_due_products(gateway.runtime.services, now=at)
    report = await count_settled(gateway.runtime.services, report)
    return {**report.as_json(), "unsettled": report.unsettled}


async def product_state(shop: Shop) -> tuple[str, str]:
    product = await only_product(shop.client, shop.customer_id)
    return product["status"], product["currentPeriodEnd"]


async def test_a_renewal_is_an_off_session_payment_intent_on_the_primary_card(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with proxied_gateway(tmp_path, localstripe) as (gateway, proxy):
        shop = await due_shop(gateway, "pm_card_visa")

        assert await renew(gateway, PERIOD_END) == {"renewed": 1, "failed": 0, "canceled": 0, "unsettled": []}

        [order] = [o for o in await orders_of(shop) if o.kind == "RENEWAL"]
        assert (order.status, order.total_minor) == ("SUCCEEDED", RENEWAL_AMOUNT)
        (created,) = proxy.posts_to("/v1/payment_intents")
        assert created.form["off_session"] == "true" and created.form["confirm"] == "true"
        assert created.form["amount"] == str(RENEWAL_AMOUNT) and created.form["currency"] == "usd"
        assert created.form["metadata[order_id]"] == order.id
        assert created.form["payment_method"] == await provider_ref(shop.db, str(order.payment_method_id))
        assert created.headers["idempotency-key"] == f"pbg-order-{order.id}"
        intent = await only_intent(localstripe, order.id)
        assert (intent["status"], intent["amount"]) == ("succeeded", RENEWAL_AMOUNT)
        # Stripe's webhook about the same payment changes nothing more
        await delivery_processed(gateway, localstripe, intent["id"], "payment_intent.succeeded")
        assert await product_state(shop) == ("ACTIVE", "2025-03-10T00:00:00.000Z")
        assert await statuses_of(shop.db, order.id) == ["PENDING", "SUCCEEDED"]
        assert await renew(gateway, PERIOD_END + timedelta(days=1)) == {
            "renewed": 0,
            "failed": 0,
            "canceled": 0,
            "unsettled": [],
        }


async def test_a_declined_renewal_is_past_due_and_a_new_card_pays_the_retry(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with proxied_gateway(tmp_path, localstripe) as (gateway, _proxy):
        shop = await due_shop(gateway, "pm_card_chargeCustomerFail")

        assert (await renew(gateway, PERIOD_END))["failed"] == 1

        [declined] = [o for o in await orders_of(shop) if o.kind == "RENEWAL"]
        assert declined.status == "FAILED" and declined.failure_reason
        assert (await only_intent(localstripe, declined.id))["status"] == "requires_payment_method"
        product = await only_product(shop.client, shop.customer_id)
        assert (product["status"], product["renewsAt"]) == ("PAST_DUE", "2025-02-11T00:00:00.000Z")

        await add_card(shop.client, shop.customer_id, "pm_card_visa", make_primary=True)
        assert (await renew(gateway, PERIOD_END + timedelta(days=1)))["renewed"] == 1

        paid = next(o for o in await orders_of(shop) if o.kind == "RENEWAL" and o.status == "SUCCEEDED")
        assert (await only_intent(localstripe, paid.id))["status"] == "succeeded"
        assert await product_state(shop) == ("ACTIVE", "2025-03-10T00:00:00.000Z")


async def test_a_renewal_needing_3ds_is_finished_by_the_partner(tmp_path: Path, localstripe: LocalStripe) -> None:
    async with proxied_gateway(tmp_path, localstripe) as (gateway, _proxy):
        shop = await due_shop(gateway, None)
        await add_card(shop.client, shop.customer_id, await create_card_payment_method(localstripe.base_url))

        report = await renew(gateway, PERIOD_END)
        (order_id,) = report["unsettled"]
        order = await wait_for_status(shop.client, shop.customer_id, order_id, {"REQUIRES_ACTION"})
        intent = await only_intent(localstripe, order_id)
        assert order["clientSecret"] == intent["client_secret"]
        assert (await product_state(shop))[0] == "PAST_DUE"

        # what the dashboard does with the client secret (Stripe.js handleNextAction)
        pi_id = intent_id_of(order["clientSecret"])
        await authenticate_payment_intent(localstripe.base_url, pi_id, True, order["clientSecret"])
        await delivery_processed(gateway, localstripe, pi_id, "payment_intent.succeeded")

        assert (await order_row(shop.db, order_id)).status == "SUCCEEDED"
        assert await product_state(shop) == ("ACTIVE", "2025-03-10T00:00:00.000Z")
        assert await statuses_of(shop.db, order_id) == ["PENDING", "REQUIRES_ACTION", "SUCCEEDED"]


async def test_a_renew_command_killed_after_the_charge_is_settled_once(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    """``partner-billing renew`` is SIGKILLed the moment Stripe has made the
    charge, before the answer reaches it: the next pass charges nothing,
    reconciliation settles the order and advances the period once."""
    async with stripe_gateway(tmp_path, localstripe, webhooks=False) as gateway:
        shop = await due_shop(gateway, "pm_card_visa")
        database_url = gateway.settings.database_url

    async with StripeProxy(localstripe.base_url) as proxy:
        env = stripe_env(database_url, proxy.url, RENEWAL_INTERVAL_S="0", RECONCILE_INTERVAL_S="0")
        command = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "renew",
            "--as-of",
            (PERIOD_END + timedelta(hours=1)).isoformat(),
            "--json",
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        killed = False

        async def kill_the_command(request: ProxiedRequest, response: httpx.Response) -> None:
            nonlocal killed
            if request.method == "POST" and request.path == "/v1/payment_intents":
                assert response.status_code == 200
                command.send_signal(signal.SIGKILL)
                killed = True
                await command.wait()

        proxy.after_upstream = kill_the_command
        try:
            await asyncio.wait_for(command.communicate(), 60)
        finally:
            if command.returncode is None:
                command.kill()
                await command.wait()
    assert killed and command.returncode == -signal.SIGKILL

    async with stripe_gateway(tmp_path, localstripe, webhooks=False) as gateway:
        [order] = [o for o in await orders_of(shop, gateway) if o.kind == "RENEWAL"]
        assert order.status == "PENDING"
        assert (await only_intent(localstripe, order.id))["status"] == "succeeded"
        assert await renew(gateway, PERIOD_END + timedelta(days=1)) == {
            "renewed": 0,
            "failed": 0,
            "canceled": 0,
            "unsettled": [],
        }

        first = await cli_reconcile(database_url, localstripe)
        second = await cli_reconcile(database_url, localstripe)

        assert (first["changed"], second["changed"]) == (1, 0)
        assert (await order_row(gateway.runtime.db, order.id)).status == "SUCCEEDED"
        assert await statuses_of(gateway.runtime.db, order.id) == ["PENDING", "SUCCEEDED"]
        client = gateway.client(shop.token)
        product = await only_product(client, shop.customer_id)
        assert (product["status"], product["currentPeriodEnd"]) == ("ACTIVE", "2025-03-10T00:00:00.000Z")
        assert len(await payment_intents_of_order(localstripe.base_url, order.id)) == 1


async def orders_of(shop: Shop, gateway: GatewayServer | None = None) -> list[Order]:
    """The customer's orders as stored, oldest first."""
    db = (gateway or shop.gateway).runtime.db
    async with db.orm() as session:
        found = await session.exec(
            select(Order).where(Order.customer_id == shop.customer_id).order_by(col(Order.created_at))
        )
        return list(found.all())

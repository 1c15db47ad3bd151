"""The whole gateway taking real payments through Stripe, against localstripe.

A real gateway (uvicorn, SQLite file) runs with ``PAYMENT_PROVIDER=stripe`` and
``STRIPE_API_BASE`` pointing at a localstripe process, which has the gateway's
``/webhooks/stripe`` registered and delivers its signed events there. Clients
speak GraphQL over HTTP and WebSocket; assertions read the gateway's database
and the emulator's state, and count licenses, order events and PaymentIntents.

What localstripe does (and these tests rely on): card charges settle
synchronously; it sends ``payment_intent.succeeded`` / ``payment_intent.payment_failed``
once, about a second later, to every registered webhook, never retried; it
ignores ``Idempotency-Key``; its 3-D Secure card (4000002760003184) goes to
``requires_action`` on an off-session confirmation, and a *failed*
authentication sends no event at all (the PaymentIntent just becomes
``requires_payment_method``). Events the tests sign themselves use Stripe's
scheme, so the gateway cannot tell them from the emulator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import col, func, select

from auth.principal import authenticate
from billing.onboarding import DemoTenant, seed_demo
from billing.orders import OrderView
from billing.purchases import LicensePurchase, NewOrder, charge_order, charge_request, record_order
from billing.reconcile import reconcile_orders
from billing.settlement import apply_payment_outcome
from gateway.bootstrap import prepare_database
from models import Customer, Order, OrderEvent, PaymentMethod, ProcessedWebhookEvent, Product, utcnow
from models.database import Database
from payments.provider import ChargeRequest, PaymentOutcome, PaymentStatus
from payments.stripe_provider import STRIPE_API_VERSION
from settings import Settings
from tests.api.helpers import (
    ADD_PAYMENT_METHOD,
    REMOVE_PAYMENT_METHOD,
    SET_PRIMARY,
    add_card,
    billing_details,
    buy,
    codes,
    get_order,
    only_product,
    wait_for_status,
)
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLClient, serve_gateway
from tests.support.localstripe import (
    LOCALSTRIPE_API_KEY,
    LocalStripe,
    ProxiedRequest,
    StripeProxy,
    authenticate_payment_intent,
    create_card_payment_method,
    emulator_get,
    events_about,
    free_port,
    list_all,
    payment_intents_of_order,
    register_webhook,
    sign_webhook_payload,
    start_localstripe_or_skip,
    stripe_event_payload,
)

pytestmark = pytest.mark.localstripe

WEBHOOK_SECRET = "whsec_gateway_end_to_end"
REPO_ROOT = Path(__file__).resolve().parents[2]
MASTERCARD_NUMBER = "5555555555554444"
CONFIRMATION = """
subscription($c: ID!, $o: ID!) {
  paymentConfirmation(actingCustomer: $c, orderId: $o) { status order { id status clientSecret } }
}"""
CHANGES = """
subscription($c: ID) { orderStatusChanged(actingCustomer: $c) { status order { id } } }
"""


# --- the emulator, the gateway, a customer ------------------------------------------------


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    emulator = start_localstripe_or_skip()
    yield emulator
    emulator.stop()


def stripe_settings(tmp_path: Path, localstripe: LocalStripe, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "payment_provider": "stripe",
        "stripe_api_key": LOCALSTRIPE_API_KEY,
        "stripe_api_base": localstripe.base_url,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        **overrides,
    }
    return sqlite_settings(tmp_path, **values)


@contextlib.asynccontextmanager
async def stripe_gateway(
    tmp_path: Path, localstripe: LocalStripe, *, webhooks: bool = True, **overrides: Any
) -> AsyncIterator[GatewayServer]:
    """A gateway on Stripe; with ``webhooks`` the emulator delivers its events
    to the gateway's ``/webhooks/stripe`` (under a name of its own, removed
    afterwards so no later event goes to a closed port)."""
    async with serve_gateway(stripe_settings(tmp_path, localstripe, **overrides)) as gateway:
        name = f"gateway-{uuid.uuid4().hex[:12]}"
        url = f"{gateway.url}/webhooks/stripe"
        if webhooks:
            await register_webhook(localstripe.base_url, name, url, WEBHOOK_SECRET)
        try:
            yield gateway
        finally:
            if webhooks:
                await register_webhook(localstripe.base_url, name, url, WEBHOOK_SECRET, events=[])


@pytest_asyncio.fixture
async def gateway(tmp_path: Path, localstripe: LocalStripe) -> AsyncIterator[GatewayServer]:
    async with stripe_gateway(tmp_path, localstripe) as server:
        yield server


@dataclass
class Shop:
    """A demo customer with its one product, seen by its partner's owner."""

    gateway: GatewayServer
    tenant: DemoTenant
    client: GraphQLClient
    customer_id: str
    product_id: str

    @property
    def token(self) -> str:
        return self.tenant.tokens["PARTNER_OWNER"]

    @property
    def db(self) -> Database:
        return self.gateway.runtime.db


async def open_shop(gateway: GatewayServer, card: str | None = "pm_card_visa") -> Shop:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    customer_id = tenant.customers[0].id
    if card is not None:
        await add_card(client, customer_id, card)
    product = await only_product(client, customer_id)
    return Shop(gateway, tenant, client, customer_id, product["id"])


async def order_left_by_a_crash(shop: Shop, quantity: int, *, charged: bool) -> tuple[OrderView, PaymentOutcome | None]:
    """What a gateway that died mid-payment leaves behind: the order committed
    (PENDING, with its Stripe idempotency key) and, if ``charged``, the charge
    made at Stripe exactly as ``charge_order`` makes it, but never applied."""
    services = shop.gateway.runtime.services
    conn = shop.db.connection()
    principal = await authenticate(conn, f"Bearer {shop.token}")
    assert principal is not None
    created = await record_order(
        services, conn, principal, shop.customer_id, LicensePurchase(product_id=shop.product_id, quantity=quantity)
    )
    assert isinstance(created, NewOrder)
    order = created.order
    if not charged:
        return order, None
    assert created.customer.provider_customer_ref
    outcome = await services.provider.charge(
        charge_request(
            created.order, provider_customer_ref=created.customer.provider_customer_ref, method=created.method
        )
    )
    return order, outcome


# --- reading state ----------------------------------------------------------------------------


async def licenses(db: Database, product_id: str) -> int:
    async with db.orm() as session:
        product = await session.get(Product, product_id)
    assert product is not None
    return product.total_licenses


async def order_row(db: Database, order_id: str) -> Order:
    async with db.orm() as session:
        order = await session.get(Order, order_id)
    assert order is not None, order_id
    return order


async def statuses_of(db: Database, order_id: str) -> list[str]:
    """Every status the order took, as its stored events (what subscribers see)."""
    async with db.orm() as session:
        rows = await session.exec(
            select(OrderEvent.status).where(OrderEvent.order_id == order_id).order_by(col(OrderEvent.seq))
        )
        return [str(status) for status in rows.all()]


async def count_events(db: Database) -> int:
    async with db.orm() as session:
        return int((await session.exec(select(func.count()).select_from(OrderEvent))).one())


async def is_processed(db: Database, event_id: str) -> bool:
    async with db.orm() as session:
        return await session.get(ProcessedWebhookEvent, event_id) is not None


async def stripe_customer_ref(db: Database, customer_id: str) -> str | None:
    async with db.orm() as session:
        customer = await session.get(Customer, customer_id)
    assert customer is not None
    return customer.provider_customer_ref


async def provider_ref(db: Database, payment_method_id: str) -> str:
    async with db.orm() as session:
        method = await session.get(PaymentMethod, payment_method_id)
    assert method is not None
    return method.provider_ref


async def only_intent(localstripe: LocalStripe, order_id: str) -> dict[str, Any]:
    intents = await payment_intents_of_order(localstripe.base_url, order_id)
    assert len(intents) == 1, f"order {order_id} has {len(intents)} PaymentIntents"
    return intents[0]


async def delivery_processed(gateway: GatewayServer, localstripe: LocalStripe, pi_id: str, event_type: str) -> str:
    """Wait until the gateway has handled the emulator's one ``event_type``
    delivery about ``pi_id``; returns the event id."""
    events = await events_about(localstripe.base_url, pi_id, event_type)
    assert len(events) == 1, events
    event_id: str = events[0]["id"]
    deadline = time.monotonic() + 10
    while not await is_processed(gateway.runtime.db, event_id):
        assert time.monotonic() < deadline, f"{event_type} {event_id} was never handled{localstripe.log_tail()}"
        await asyncio.sleep(0.05)
    return event_id


# --- webhook deliveries the tests make themselves ----------------------------------------------


async def post_webhook(gateway: GatewayServer, payload: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await gateway.http.post("/webhooks/stripe", content=payload, headers=headers)


async def post_signed(gateway: GatewayServer, payload: bytes) -> httpx.Response:
    return await post_webhook(gateway, payload, sign_webhook_payload(payload, WEBHOOK_SECRET))


async def intent_event(localstripe: LocalStripe, event_type: str, pi_id: str, **changes: Any) -> bytes:
    """A ``payment_intent.*`` event about the emulator's PaymentIntent as it is
    now, with ``changes`` to what the event claims."""
    intent = await emulator_get(localstripe.base_url, f"/v1/payment_intents/{pi_id}")
    return stripe_event_payload(event_type, {**intent, **changes})


# --- the CLI and a gateway process ------------------------------------------------------------


def stripe_env(database_url: str, api_base: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STRIPE_") and key not in {"DATABASE_URL", "PAYMENT_PROVIDER", "BROADCAST_URL"}
    }
    env.update(
        DATABASE_URL=database_url,
        PAYMENT_PROVIDER="stripe",
        STRIPE_API_KEY=LOCALSTRIPE_API_KEY,
        STRIPE_API_BASE=api_base,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        **extra,
    )
    return env


async def cli_reconcile(database_url: str, localstripe: LocalStripe) -> dict[str, int]:
    """``partner-billing reconcile --older-than 0 --json`` as its own process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "reconcile",
        "--older-than",
        "0",
        "--json",
        cwd=REPO_ROOT,
        env=stripe_env(database_url, localstripe.base_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    report: dict[str, int] = json.loads(out)
    return report


# --- customers and payment methods ------------------------------------------------------------


async def test_one_stripe_customer_per_gateway_customer_created_on_first_need_and_reused(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway, card=None)
    assert await stripe_customer_ref(shop.db, shop.customer_id) is None

    visa = await add_card(shop.client, shop.customer_id, "pm_card_visa")
    ref = await stripe_customer_ref(shop.db, shop.customer_id)
    mastercard_token = await create_card_payment_method(localstripe.base_url, MASTERCARD_NUMBER)
    mastercard = await add_card(shop.client, shop.customer_id, mastercard_token)

    assert ref is not None and ref.startswith("cus_")
    assert await stripe_customer_ref(shop.db, shop.customer_id) == ref
    customers = [
        c
        for c in await list_all(localstripe.base_url, "/v1/customers")
        if (c.get("metadata") or {}).get("gateway_customer_id") == shop.customer_id
    ]
    assert [c["id"] for c in customers] == [ref]
    assert customers[0]["name"] == shop.tenant.customers[0].name
    attached = await emulator_get(localstripe.base_url, "/v1/payment_methods", {"customer": ref, "type": "card"})
    assert {pm["id"] for pm in attached["data"]} == {
        await provider_ref(shop.db, visa["id"]),
        await provider_ref(shop.db, mastercard["id"]),
    }
    assert (visa["last4"], mastercard["last4"]) == ("4242", "4444")  # localstripe calls every card "visa"
    # The tenant's other customer has needed no Stripe customer yet.
    assert await stripe_customer_ref(shop.db, shop.tenant.customers[1].id) is None


async def test_the_primary_method_is_the_stripe_customers_default(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway, card=None)

    async def stripe_default() -> str | None:
        ref = await stripe_customer_ref(shop.db, shop.customer_id)
        customer = await emulator_get(localstripe.base_url, f"/v1/customers/{ref}")
        default: str | None = customer["invoice_settings"]["default_payment_method"]
        return default

    first = await add_card(shop.client, shop.customer_id, "pm_card_visa")
    assert first["isPrimary"]
    assert await stripe_default() == await provider_ref(shop.db, first["id"])

    second = await add_card(shop.client, shop.customer_id, "pm_card_visa", make_primary=True)
    assert await stripe_default() == await provider_ref(shop.db, second["id"])

    chosen = await shop.client.data(SET_PRIMARY, {"c": shop.customer_id, "pm": first["id"]})
    assert chosen["setPrimaryPaymentMethod"]["userErrors"] == []
    assert await stripe_default() == await provider_ref(shop.db, first["id"])

    removed = await shop.client.data(REMOVE_PAYMENT_METHOD, {"c": shop.customer_id, "pm": first["id"]})
    assert removed["removePaymentMethod"]["userErrors"] == []
    details = await billing_details(shop.client, shop.customer_id)
    assert details["primaryPaymentMethod"]["id"] == second["id"]
    assert await stripe_default() == await provider_ref(shop.db, second["id"])
    detached = await emulator_get(
        localstripe.base_url, f"/v1/payment_methods/{await provider_ref(shop.db, first['id'])}"
    )
    assert detached["customer"] is None


async def test_a_card_declined_when_added_is_not_stored(gateway: GatewayServer, localstripe: LocalStripe) -> None:
    shop = await open_shop(gateway, card=None)

    data = await shop.client.data(
        ADD_PAYMENT_METHOD,
        {"c": shop.customer_id, "input": {"paymentMethodToken": "pm_card_visa_chargeDeclined", "makePrimary": True}},
    )

    payload = data["addPaymentMethod"]
    assert payload["paymentMethod"] is None
    assert codes(payload) == ["CARD_DECLINED"]
    details = await billing_details(shop.client, shop.customer_id)
    assert details["paymentMethods"] == [] and details["primaryPaymentMethod"] is None
    async with shop.db.orm() as session:
        stored = (await session.exec(select(PaymentMethod).where(PaymentMethod.customer_id == shop.customer_id))).all()
    assert list(stored) == []
    ref = await stripe_customer_ref(shop.db, shop.customer_id)
    assert ref is not None  # made for the attempt, and kept for the next card
    attached = await emulator_get(localstripe.base_url, "/v1/payment_methods", {"customer": ref, "type": "card"})
    assert attached["data"] == []


# --- charges ------------------------------------------------------------------------------------


async def test_a_successful_purchase_adds_licenses_once_even_after_the_webhook(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway)
    before = await licenses(shop.db, shop.product_id)

    payload = await buy(shop.client, shop.customer_id, shop.product_id, 3)

    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "SUCCEEDED" and order["clientSecret"] is None
    intent = await only_intent(localstripe, order["id"])
    assert intent["status"] == "succeeded"
    assert intent["amount"] == order["total"]["minorUnits"]
    assert intent["currency"] == order["total"]["currency"].lower()
    assert intent["customer"] == await stripe_customer_ref(shop.db, shop.customer_id)
    assert intent["payment_method"] == await provider_ref(shop.db, order["paymentMethod"]["id"])
    assert (await order_row(shop.db, order["id"])).provider_payment_ref == intent["id"]
    # Stripe's own confirmation arrives about a second later and changes nothing.
    await delivery_processed(gateway, localstripe, intent["id"], "payment_intent.succeeded")
    assert await licenses(shop.db, shop.product_id) == before + 3
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "SUCCEEDED"]
    assert len(await payment_intents_of_order(localstripe.base_url, order["id"])) == 1


async def test_charges_pin_the_api_version_and_send_the_committed_orders_idempotency_key(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with (
        StripeProxy(localstripe.base_url) as proxy,
        stripe_gateway(tmp_path, localstripe, webhooks=False, stripe_api_base=proxy.url) as gateway,
    ):
        shop = await open_shop(gateway)
        other = await add_card(
            shop.client, shop.customer_id, await create_card_payment_method(localstripe.base_url, MASTERCARD_NUMBER)
        )
        committed_at_charge: list[Order | None] = []

        async def look_at_the_database(request: ProxiedRequest, _response: httpx.Response) -> None:
            if request.method == "POST" and request.path == "/v1/payment_intents":
                key = request.headers.get("idempotency-key")
                async with shop.db.orm() as session:
                    rows = await session.exec(select(Order).where(Order.provider_idempotency_key == key))
                    committed_at_charge.append(rows.first())

        proxy.after_upstream = look_at_the_database
        payload = await buy(shop.client, shop.customer_id, shop.product_id, 2, paymentMethodId=other["id"])

    order = payload["order"]
    assert payload["userErrors"] == [] and order["status"] == "SUCCEEDED"
    assert proxy.requests, "STRIPE_API_BASE was not used"
    assert {r.headers.get("stripe-version") for r in proxy.requests} == {STRIPE_API_VERSION}
    [create] = proxy.posts_to("/v1/payment_intents")
    assert create.headers["idempotency-key"] == f"pbg-order-{order['id']}"
    assert create.form["confirm"] == "true" and create.form["off_session"] == "true"
    assert create.form["payment_method"] == await provider_ref(shop.db, other["id"])
    assert create.form["customer"] == await stripe_customer_ref(shop.db, shop.customer_id)
    assert create.form["amount"] == str(order["total"]["minorUnits"])
    assert create.form["metadata[order_id]"] == order["id"]
    # The order and its key were committed before Stripe was asked to charge.
    [seen] = committed_at_charge
    assert seen is not None and seen.id == order["id"] and seen.status == "PENDING"


async def test_a_charge_declined_fails_the_order_and_changes_nothing_else(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway, card="pm_card_chargeCustomerFail")
    before = await licenses(shop.db, shop.product_id)

    async with gateway.websocket(shop.token) as ws:
        changes = await ws.subscribe(CHANGES, {"c": shop.customer_id})
        await asyncio.sleep(0.1)  # let the subscription register before buying
        payload = await buy(shop.client, shop.customer_id, shop.product_id, 2)
        order = payload["order"]
        live = [(await ws.next_data(changes))["orderStatusChanged"] for _ in range(2)]

    assert codes(payload) == ["CARD_DECLINED"]
    assert order["status"] == "FAILED" and order["failureReason"] == "Your card was declined."
    assert [(e["order"]["id"], e["status"]) for e in live] == [(order["id"], "PENDING"), (order["id"], "FAILED")]
    async with gateway.websocket(shop.token) as ws:
        op = await ws.subscribe(CONFIRMATION, {"c": shop.customer_id, "o": order["id"]})
        assert (await ws.next_data(op))["paymentConfirmation"]["status"] == "FAILED"
        assert await ws.receive() == {"id": op, "type": "complete"}
    intent = await only_intent(localstripe, order["id"])
    assert intent["status"] == "requires_payment_method"
    await delivery_processed(gateway, localstripe, intent["id"], "payment_intent.payment_failed")
    assert await licenses(shop.db, shop.product_id) == before
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "FAILED"]


# --- 3-D Secure ---------------------------------------------------------------------------------


async def buy_with_3ds_card(shop: Shop, localstripe: LocalStripe, quantity: int) -> dict[str, Any]:
    """buyLicenses with localstripe's 3-D Secure card as the primary method."""
    await add_card(shop.client, shop.customer_id, await create_card_payment_method(localstripe.base_url))
    payload = await buy(shop.client, shop.customer_id, shop.product_id, quantity)
    assert payload["userErrors"] == [], payload
    order: dict[str, Any] = payload["order"]
    return order


def intent_id_of(client_secret: str) -> str:
    """What Stripe.js does with a client secret: ``pi_…_secret_…``."""
    return client_secret.split("_secret_")[0]


async def test_3ds_requires_action_then_authenticated_payment_is_settled_by_reconciliation(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    # No webhooks: the emulator's confirmation is lost, so only the gateway's
    # reconciliation can learn that the customer authenticated.
    async with stripe_gateway(tmp_path, localstripe, webhooks=False) as gateway:
        shop = await open_shop(gateway, card=None)
        before = await licenses(shop.db, shop.product_id)
        order = await buy_with_3ds_card(shop, localstripe, 4)

        assert order["status"] == "REQUIRES_ACTION"
        intent = await only_intent(localstripe, order["id"])
        assert intent["status"] == "requires_action"
        assert order["clientSecret"] == intent["client_secret"]
        assert await licenses(shop.db, shop.product_id) == before

        async with gateway.websocket(shop.token) as ws:
            op = await ws.subscribe(CONFIRMATION, {"c": shop.customer_id, "o": order["id"]})
            first = (await ws.next_data(op))["paymentConfirmation"]
            # The dashboard: stripe.handleNextAction({clientSecret}) succeeds.
            await authenticate_payment_intent(
                localstripe.base_url, intent_id_of(order["clientSecret"]), True, order["clientSecret"]
            )
            report = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))
            second = (await ws.next_data(op))["paymentConfirmation"]
            assert await ws.receive() == {"id": op, "type": "complete"}

        assert (first["status"], first["order"]["clientSecret"]) == ("REQUIRES_ACTION", order["clientSecret"])
        assert (second["status"], second["order"]["clientSecret"]) == ("SUCCEEDED", None)
        assert report.changed == 1
        assert await licenses(shop.db, shop.product_id) == before + 4
        assert await statuses_of(shop.db, order["id"]) == ["PENDING", "REQUIRES_ACTION", "SUCCEEDED"]
        assert len(await payment_intents_of_order(localstripe.base_url, order["id"])) == 1


async def test_3ds_authenticated_payment_is_settled_by_stripes_webhook(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway, card=None)
    before = await licenses(shop.db, shop.product_id)
    order = await buy_with_3ds_card(shop, localstripe, 2)
    assert order["status"] == "REQUIRES_ACTION"

    async with gateway.websocket(shop.token) as ws:
        op = await ws.subscribe(CONFIRMATION, {"c": shop.customer_id, "o": order["id"]})
        assert (await ws.next_data(op))["paymentConfirmation"]["status"] == "REQUIRES_ACTION"
        pi_id = intent_id_of(order["clientSecret"])
        await authenticate_payment_intent(localstripe.base_url, pi_id, True, order["clientSecret"])
        await delivery_processed(gateway, localstripe, pi_id, "payment_intent.succeeded")
        assert (await order_row(shop.db, order["id"])).status == "SUCCEEDED"
        assert (await ws.next_data(op))["paymentConfirmation"]["status"] == "SUCCEEDED"
        assert await ws.receive() == {"id": op, "type": "complete"}

    assert await licenses(shop.db, shop.product_id) == before + 2
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "REQUIRES_ACTION", "SUCCEEDED"]


async def test_3ds_failed_authentication_stays_requires_action_until_reconciled_as_failed(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway, card=None)
    before = await licenses(shop.db, shop.product_id)
    order = await buy_with_3ds_card(shop, localstripe, 2)
    pi_id = intent_id_of(order["clientSecret"])

    await authenticate_payment_intent(localstripe.base_url, pi_id, False, order["clientSecret"])

    # localstripe makes no event for a failed authentication (Stripe sends
    # payment_intent.payment_failed), so the order waits for reconciliation.
    assert await events_about(localstripe.base_url, pi_id) == []
    assert (await emulator_get(localstripe.base_url, f"/v1/payment_intents/{pi_id}"))[
        "status"
    ] == "requires_payment_method"
    assert (await get_order(shop.client, shop.customer_id, order["id"]))["status"] == "REQUIRES_ACTION"

    await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))

    failed = await get_order(shop.client, shop.customer_id, order["id"])
    assert failed["status"] == "FAILED"
    assert failed["failureReason"] == "The provided PaymentMethod has failed authentication."
    assert failed["clientSecret"] is None
    assert await licenses(shop.db, shop.product_id) == before
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "REQUIRES_ACTION", "FAILED"]


# --- webhooks -----------------------------------------------------------------------------------


async def test_a_duplicate_webhook_is_answered_and_ignored(gateway: GatewayServer, localstripe: LocalStripe) -> None:
    shop = await open_shop(gateway)
    before = await licenses(shop.db, shop.product_id)
    order = (await buy(shop.client, shop.customer_id, shop.product_id, 2))["order"]
    intent = await only_intent(localstripe, order["id"])
    event_id = await delivery_processed(gateway, localstripe, intent["id"], "payment_intent.succeeded")
    event = await emulator_get(localstripe.base_url, f"/v1/events/{event_id}")

    again = await post_signed(gateway, json.dumps(event).encode())
    fresh = json.dumps({**event, "id": f"evt_copy_{secrets.token_hex(6)}"}).encode()
    together = await asyncio.gather(post_signed(gateway, fresh), post_signed(gateway, fresh))
    once_more = await post_signed(gateway, fresh)

    assert (again.status_code, again.json()) == (200, {"status": "duplicate ignored"})
    assert all(200 <= r.status_code < 300 for r in together), [r.text for r in together]
    assert (once_more.status_code, once_more.json()) == (200, {"status": "duplicate ignored"})
    assert await licenses(shop.db, shop.product_id) == before + 2
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "SUCCEEDED"]


def forged_signature(payload: bytes) -> str | None:
    return sign_webhook_payload(payload, "whsec_someone_else")


def stale_signature(payload: bytes) -> str | None:
    return sign_webhook_payload(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)


def no_signature(_payload: bytes) -> str | None:
    return None


def signature_of_another_body(payload: bytes) -> str | None:
    return sign_webhook_payload(payload.replace(b'"livemode": false', b'"livemode": true'), WEBHOOK_SECRET)


def garbage_signature(_payload: bytes) -> str | None:
    return "t=yesterday,v1=not-hex"


@pytest.mark.parametrize(
    "signature",
    [forged_signature, stale_signature, no_signature, signature_of_another_body, garbage_signature],
    ids=["wrong-secret", "stale-timestamp", "missing-header", "other-body", "garbage-header"],
)
async def test_a_webhook_without_a_valid_signature_is_refused_and_changes_nothing(
    tmp_path: Path, localstripe: LocalStripe, signature: Any
) -> None:
    async with stripe_gateway(tmp_path, localstripe, webhooks=False) as gateway:
        shop = await open_shop(gateway)
        before = await licenses(shop.db, shop.product_id)
        # A paid order the gateway has not settled yet: an accepted event would settle it.
        order, outcome = await order_left_by_a_crash(shop, 2, charged=True)
        assert outcome is not None and outcome.status is PaymentStatus.SUCCEEDED
        payload = await intent_event(localstripe, "payment_intent.succeeded", outcome.payment_ref)

        response = await post_webhook(gateway, payload, signature(payload))

        assert (response.status_code, response.json()) == (400, {"status": "invalid signature"})
        assert (await order_row(shop.db, order.id)).status == "PENDING"
        assert await licenses(shop.db, shop.product_id) == before
        assert not await is_processed(shop.db, json.loads(payload)["id"])


async def test_a_validly_signed_body_that_is_not_json_is_a_bad_request(gateway: GatewayServer) -> None:
    events_before = await count_events(gateway.runtime.db)
    response = await post_signed(gateway, b"payment_intent.succeeded, but not JSON")
    assert response.status_code == 400
    assert await count_events(gateway.runtime.db) == events_before


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b"{}",
        b'{"id": "evt_no_data", "object": "event", "type": "payment_intent.succeeded"}',
    ],
    ids=["array", "empty-object", "event-without-data"],
)
async def test_a_validly_signed_json_body_that_is_not_an_event_is_a_bad_request(
    gateway: GatewayServer, body: bytes
) -> None:
    response = await post_signed(gateway, body)
    assert response.status_code == 400


async def test_an_unknown_event_type_is_acknowledged_and_ignored(gateway: GatewayServer) -> None:
    shop = await open_shop(gateway)
    events_before = await count_events(shop.db)
    payload = stripe_event_payload(
        "customer.subscription.deleted", {"id": "sub_123", "object": "subscription", "metadata": {}}
    )

    response = await post_signed(gateway, payload)

    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert await count_events(shop.db) == events_before


async def test_an_event_for_an_order_the_gateway_does_not_know_is_acknowledged(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway)
    events_before = await count_events(shop.db)
    # A real PaymentIntent whose order lives elsewhere (another deployment on the account).
    ref = await stripe_customer_ref(shop.db, shop.customer_id)
    details = await billing_details(shop.client, shop.customer_id)
    assert ref is not None
    elsewhere = await gateway.runtime.services.provider.charge(
        ChargeRequest(
            order_id="ord_of_another_gateway",
            customer_id="cst_elsewhere",
            amount_minor=500,
            currency="USD",
            provider_customer_ref=ref,
            payment_method_ref=await provider_ref(shop.db, details["primaryPaymentMethod"]["id"]),
            idempotency_key="elsewhere-1",
        )
    )
    real = await intent_event(localstripe, "payment_intent.succeeded", elsewhere.payment_ref)
    unknown = stripe_event_payload(
        "payment_intent.succeeded",
        {"id": "pi_nobody_knows", "object": "payment_intent", "status": "succeeded", "metadata": {"order_id": "x"}},
    )

    answers = [await post_signed(gateway, real), await post_signed(gateway, unknown)]

    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    assert await count_events(shop.db) == events_before


async def test_a_late_failure_event_never_moves_a_succeeded_order_back(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway)
    before = await licenses(shop.db, shop.product_id)
    order = (await buy(shop.client, shop.customer_id, shop.product_id, 2))["order"]
    assert order["status"] == "SUCCEEDED"
    pi_id = (await only_intent(localstripe, order["id"]))["id"]
    failure = await intent_event(
        localstripe,
        "payment_intent.payment_failed",
        pi_id,
        status="requires_payment_method",
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )

    response = await post_signed(gateway, failure)

    assert 200 <= response.status_code < 300, response.text
    assert (await get_order(shop.client, shop.customer_id, order["id"]))["status"] == "SUCCEEDED"
    assert await licenses(shop.db, shop.product_id) == before + 2
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "SUCCEEDED"]


async def test_a_success_event_for_a_declined_payment_changes_nothing(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway, card="pm_card_chargeCustomerFail")
    before = await licenses(shop.db, shop.product_id)
    order = (await buy(shop.client, shop.customer_id, shop.product_id, 2))["order"]
    assert order["status"] == "FAILED"
    pi_id = (await only_intent(localstripe, order["id"]))["id"]
    # Validly signed, but the PaymentIntent itself (re-read from Stripe) was declined.
    claim = await intent_event(localstripe, "payment_intent.succeeded", pi_id, status="succeeded")

    response = await post_signed(gateway, claim)

    assert 200 <= response.status_code < 300, response.text
    assert (await get_order(shop.client, shop.customer_id, order["id"]))["status"] == "FAILED"
    assert await licenses(shop.db, shop.product_id) == before
    assert await statuses_of(shop.db, order["id"]) == ["PENDING", "FAILED"]


async def test_the_webhook_may_settle_before_the_api_response_and_fulfilment_happens_once(
    gateway: GatewayServer, localstripe: LocalStripe
) -> None:
    shop = await open_shop(gateway)
    before = await licenses(shop.db, shop.product_id)
    # The charge is made; the request that made it has not applied the answer yet.
    order, outcome = await order_left_by_a_crash(shop, 3, charged=True)
    assert outcome is not None

    await delivery_processed(gateway, localstripe, outcome.payment_ref, "payment_intent.succeeded")
    assert (await order_row(shop.db, order.id)).status == "SUCCEEDED"
    # Now the request finishes with the order as it read it (PENDING).
    finished = await charge_order(gateway.runtime.services, shop.db.connection(), order)

    assert finished.status == "SUCCEEDED"
    assert await licenses(shop.db, shop.product_id) == before + 3
    assert await statuses_of(shop.db, order.id) == ["PENDING", "SUCCEEDED"]
    assert len(await payment_intents_of_order(localstripe.base_url, order.id)) == 1


async def test_a_webhook_that_cannot_reread_the_payment_intent_asks_stripe_to_retry(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    async with stripe_gateway(tmp_path, localstripe, webhooks=False, stripe_api_base=unreachable) as gateway:
        payload = stripe_event_payload(
            "payment_intent.succeeded",
            {"id": "pi_somewhere", "object": "payment_intent", "status": "succeeded", "metadata": {"order_id": "o"}},
        )
        response = await post_signed(gateway, payload)
        assert (response.status_code, response.json()) == (503, {"status": "payment provider unavailable; retry"})
        assert not await is_processed(gateway.runtime.db, json.loads(payload)["id"])


# --- recovery -----------------------------------------------------------------------------------


async def test_partner_billing_reconcile_settles_orders_a_dead_gateway_left(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with stripe_gateway(tmp_path, localstripe, webhooks=False) as gateway:
        shop = await open_shop(gateway)
        database_url = gateway.settings.database_url
        before = await licenses(shop.db, shop.product_id)
        # Died after Stripe charged, before applying the answer…
        charged, outcome = await order_left_by_a_crash(shop, 2, charged=True)
        # …and died after committing the order, before calling Stripe.
        uncharged, _ = await order_left_by_a_crash(shop, 5, charged=False)
    assert outcome is not None and outcome.status is PaymentStatus.SUCCEEDED
    assert await payment_intents_of_order(localstripe.base_url, uncharged.id) == []

    first = await cli_reconcile(database_url, localstripe)
    second = await cli_reconcile(database_url, localstripe)

    assert first == {"examined": 2, "changed": 2, "unreachable": 0}
    assert second == {"examined": 0, "changed": 0, "unreachable": 0}
    db = Database(database_url)
    try:
        for order in (charged, uncharged):
            assert (await order_row(db, order.id)).status == "SUCCEEDED"
            assert await statuses_of(db, order.id) == ["PENDING", "SUCCEEDED"]
            intent = await only_intent(localstripe, order.id)
            assert intent["status"] == "succeeded"
        assert await licenses(db, shop.product_id) == before + 7
    finally:
        await db.dispose()


async def test_a_gateway_killed_mid_payment_is_settled_by_reconcile(tmp_path: Path, localstripe: LocalStripe) -> None:
    """A real gateway process, SIGKILLed at the moment Stripe has made the charge
    and before the answer reaches it (a proxy in front of the emulator holds it)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'killed.sqlite3'}"
    db = Database(database_url)
    await prepare_database(db)
    tenant = await seed_demo(db)
    customer_id, token = tenant.customers[0].id, tenant.tokens["PARTNER_OWNER"]
    port = free_port()
    log_path = tmp_path / "gateway.log"
    try:
        async with (
            StripeProxy(localstripe.base_url) as proxy,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):
            with log_path.open("wb") as log:
                gateway = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    cwd=REPO_ROOT,
                    env=stripe_env(
                        database_url, proxy.url, RATE_LIMIT="off", RECONCILE_INTERVAL_S="0", LOG_LEVEL="WARNING"
                    ),
                    stdout=log,
                    stderr=log,
                )
            killed = False
            try:
                deadline = time.monotonic() + 30
                while True:
                    assert gateway.returncode is None, log_path.read_text()
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    assert time.monotonic() < deadline, log_path.read_text()
                    await asyncio.sleep(0.1)
                client = GraphQLClient(http, token)
                await add_card(client, customer_id, "pm_card_visa")
                product = await only_product(client, customer_id)
                before = product["totalLicenses"]

                async def kill_the_gateway(request: ProxiedRequest, response: httpx.Response) -> None:
                    nonlocal killed
                    if request.method == "POST" and request.path == "/v1/payment_intents":
                        assert response.status_code == 200
                        gateway.send_signal(signal.SIGKILL)
                        killed = True
                        await gateway.wait()  # dead before Stripe's answer could reach it

                proxy.after_upstream = kill_the_gateway
                with pytest.raises(httpx.TransportError):
                    await buy(client, customer_id, product["id"], 4, idempotencyKey="killed-mid-payment")
            finally:
                # Signal it only if the hook did not: signalling polls, and a
                # poll would reap the child before asyncio's watcher does.
                if not killed and gateway.returncode is None:
                    gateway.kill()
                await asyncio.wait_for(gateway.wait(), 10)
        assert killed and gateway.returncode == -signal.SIGKILL

        async with db.orm() as session:
            [order] = (await session.exec(select(Order).where(Order.customer_id == customer_id))).all()
        assert order.status == "PENDING"
        assert order.provider_idempotency_key == f"pbg-order-{order.id}"
        assert proxy.posts_to("/v1/payment_intents")[0].headers["idempotency-key"] == order.provider_idempotency_key
        assert (await only_intent(localstripe, order.id))["status"] == "succeeded"
        assert await licenses(db, product["id"]) == before

        first = await cli_reconcile(database_url, localstripe)
        second = await cli_reconcile(database_url, localstripe)

        assert first == {"examined": 1, "changed": 1, "unreachable": 0}
        assert second == {"examined": 0, "changed": 0, "unreachable": 0}
        assert (await order_row(db, order.id)).status == "SUCCEEDED"
        assert await statuses_of(db, order.id) == ["PENDING", "SUCCEEDED"]
        assert await licenses(db, product["id"]) == before + 4
        await only_intent(localstripe, order.id)
    finally:
        await db.dispose()


async def test_the_running_gateways_periodic_pass_settles_unfinished_orders(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with stripe_gateway(tmp_path, localstripe, webhooks=False, reconcile_interval_s=1) as gateway:
        shop = await open_shop(gateway)
        before = await licenses(shop.db, shop.product_id)
        charged, outcome = await order_left_by_a_crash(shop, 1, charged=True)
        processing, processing_outcome = await order_left_by_a_crash(shop, 2, charged=True)
        assert outcome is not None and processing_outcome is not None
        # Stripe had said "processing" and the gateway died before the confirmation.
        await apply_payment_outcome(
            gateway.runtime.services,
            shop.db.connection(),
            PaymentOutcome(processing_outcome.payment_ref, processing.id, PaymentStatus.PROCESSING),
        )
        uncharged, _ = await order_left_by_a_crash(shop, 4, charged=False)
        orders = (charged, processing, uncharged)

        await asyncio.sleep(1.5)  # at least one pass: orders younger than 30 s are left alone
        assert [(await order_row(shop.db, o.id)).status for o in orders] == ["PENDING", "PROCESSING", "PENDING"]

        later = utcnow() + timedelta(minutes=5)
        gateway.runtime.services.clock = lambda: later
        for order in orders:
            await wait_for_status(shop.client, shop.customer_id, order.id, {"SUCCEEDED", "FAILED"}, timeout=10)

        assert await licenses(shop.db, shop.product_id) == before + 7
        assert await statuses_of(shop.db, charged.id) == ["PENDING", "SUCCEEDED"]
        assert await statuses_of(shop.db, processing.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]
        assert await statuses_of(shop.db, uncharged.id) == ["PENDING", "SUCCEEDED"]
        for order in orders:
            await only_intent(localstripe, order.id)


async def test_an_unreachable_stripe_keeps_the_order_pending_without_logging_secrets(
    tmp_path: Path, localstripe: LocalStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api_key = f"sk_test_{secrets.token_hex(16)}"
    async with stripe_gateway(tmp_path, localstripe, webhooks=False, stripe_api_key=api_key) as gateway:
        shop = await open_shop(gateway)
        before = await licenses(shop.db, shop.product_id)

    unreachable = f"http://127.0.0.1:{free_port()}"
    async with stripe_gateway(
        tmp_path, localstripe, webhooks=False, stripe_api_key=api_key, stripe_api_base=unreachable
    ) as gateway:
        payload = await buy(
            gateway.client(shop.token), shop.customer_id, shop.product_id, 3, idempotencyKey="while-down"
        )
        order_id = payload["order"]["id"]
        assert payload["order"]["status"] == "PENDING"
        assert codes(payload) == ["PAYMENT_PROVIDER_UNAVAILABLE"]
        assert await licenses(gateway.runtime.db, shop.product_id) == before

    assert api_key not in json.dumps(payload)
    assert f"order {order_id}: payment provider unavailable" in caplog.text
    assert api_key not in caplog.text
    assert WEBHOOK_SECRET not in caplog.text

    # Stripe is back: the gateway's reconciliation charges the order once.
    async with stripe_gateway(tmp_path, localstripe, webhooks=False, stripe_api_key=api_key) as gateway:
        report = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))
        replay = await buy(
            gateway.client(shop.token), shop.customer_id, shop.product_id, 3, idempotencyKey="while-down"
        )
        db = gateway.runtime.db
        assert report.changed == 1
        assert (replay["order"]["id"], replay["order"]["status"], replay["userErrors"]) == (order_id, "SUCCEEDED", [])
        assert await licenses(db, shop.product_id) == before + 3
        assert await statuses_of(db, order_id) == ["PENDING", "SUCCEEDED"]
        assert (await only_intent(localstripe, order_id))["status"] == "succeeded"
    assert api_key not in caplog.text

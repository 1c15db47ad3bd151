"""StripePaymentProvider against a real localstripe process (a Stripe emulator)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Self

import httpx
import pytest
import pytest_asyncio
import stripe

from payments.provider import (
    CardDeclined,
    ChargeRequest,
    PaymentMethodTokenInvalid,
    PaymentOutcome,
    PaymentStatus,
    ProviderUnavailable,
)
from payments.stripe_provider import (
    InvalidWebhook,
    StripePaymentProvider,
    outcome_from_payment_intent,
)
from tests.support.localstripe import (
    LOCALSTRIPE_API_KEY,
    LocalStripe,
    authenticate_payment_intent,
    create_card_payment_method,
    free_port,
    list_payment_intents,
    register_webhook,
    start_localstripe_or_skip,
)

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    emulator = start_localstripe_or_skip()
    yield emulator
    emulator.stop()


@pytest_asyncio.fixture
async def provider(localstripe: LocalStripe) -> AsyncIterator[StripePaymentProvider]:
    stripe_provider = StripePaymentProvider(LOCALSTRIPE_API_KEY, localstripe.base_url, timeout_s=5)
    yield stripe_provider
    await stripe_provider.aclose()


@pytest_asyncio.fixture
async def customer_ref(provider: StripePaymentProvider) -> str:
    return await provider.ensure_customer(customer_id=new_id("cust"), name="Acme Ltd", existing_ref=None)


async def attach(provider: StripePaymentProvider, customer_ref: str, token: str) -> str:
    card = await provider.attach_payment_method(provider_customer_ref=customer_ref, token=token)
    return card.provider_ref


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def charge_request(customer_ref: str, payment_method_ref: str, order_id: str | None = None) -> ChargeRequest:
    order_id = order_id or new_id("order")
    return ChargeRequest(
        order_id=order_id,
        customer_id="cust_1",
        amount_minor=1250,
        currency="EUR",
        provider_customer_ref=customer_ref,
        payment_method_ref=payment_method_ref,
        idempotency_key=f"charge-{order_id}",
    )


async def emulator_get(localstripe: LocalStripe, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {LOCALSTRIPE_API_KEY}"}
    async with httpx.AsyncClient(base_url=localstripe.base_url, headers=headers) as client:
        response = await client.get(path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def intents_for_order(localstripe: LocalStripe, order_id: str) -> list[dict[str, Any]]:
    intents = await list_payment_intents(localstripe.base_url)
    return [intent for intent in intents if intent["metadata"].get("order_id") == order_id]


# --- customers and payment methods -------------------------------------------------


@pytest.mark.localstripe
async def test_ensure_customer_creates_a_customer_named_after_the_gateway_one(
    provider: StripePaymentProvider, localstripe: LocalStripe
) -> None:
    ref = await provider.ensure_customer(customer_id="cust_42", name="Acme Ltd", existing_ref=None)

    customer = await emulator_get(localstripe, f"/v1/customers/{ref}")
    assert customer["name"] == "Acme Ltd"
    assert customer["metadata"] == {"gateway_customer_id": "cust_42"}


async def test_ensure_customer_keeps_an_existing_customer_without_asking_stripe() -> None:
    offline = StripePaymentProvider(LOCALSTRIPE_API_KEY, f"http://127.0.0.1:{free_port()}")
    try:
        ref = await offline.ensure_customer(customer_id="cust_42", name="Acme", existing_ref="cus_known")
    finally:
        await offline.aclose()

    assert ref == "cus_known"


@pytest.mark.localstripe
async def test_attaching_a_visa_returns_its_card_details(provider: StripePaymentProvider, customer_ref: str) -> None:
    card = await provider.attach_payment_method(provider_customer_ref=customer_ref, token="pm_card_visa")

    assert card.provider_ref.startswith("pm_")
    assert card.provider_ref != "pm_card_visa"
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )


@pytest.mark.localstripe
async def test_attaching_a_declined_card_raises_card_declined(
    provider: StripePaymentProvider, customer_ref: str
) -> None:
    with pytest.raises(CardDeclined, match="declined"):
        await provider.attach_payment_method(provider_customer_ref=customer_ref, token="pm_card_visa_chargeDeclined")


@pytest.mark.localstripe
async def test_attaching_an_unknown_token_raises_token_invalid(
    provider: StripePaymentProvider, customer_ref: str
) -> None:
    with pytest.raises(PaymentMethodTokenInvalid):
        await provider.attach_payment_method(provider_customer_ref=customer_ref, token="pm_does_not_exist")


@pytest.mark.localstripe
async def test_set_default_payment_method_sets_the_invoice_default(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    method_ref = await attach(provider, customer_ref, "pm_card_visa")

    await provider.set_default_payment_method(provider_customer_ref=customer_ref, payment_method_ref=method_ref)

    customer = await emulator_get(localstripe, f"/v1/customers/{customer_ref}")
    assert customer["invoice_settings"]["default_payment_method"] == method_ref


@pytest.mark.localstripe
async def test_detach_forgets_the_method_and_may_be_repeated(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    method_ref = await attach(provider, customer_ref, "pm_card_visa")

    await provider.detach_payment_method(payment_method_ref=method_ref)
    await provider.detach_payment_method(payment_method_ref=method_ref)

    method = await emulator_get(localstripe, f"/v1/payment_methods/{method_ref}")
    assert method["customer"] is None


# --- charges -------------------------------------------------------------------------


@pytest.mark.localstripe
async def test_charging_a_visa_succeeds(provider: StripePaymentProvider, customer_ref: str) -> None:
    request = charge_request(customer_ref, await attach(provider, customer_ref, "pm_card_visa"))

    outcome = await provider.charge(request)

    assert outcome.status is PaymentStatus.SUCCEEDED
    assert outcome.payment_ref.startswith("pi_")
    assert outcome.order_id == request.order_id
    assert outcome.client_secret is None


@pytest.mark.localstripe
async def test_a_declined_charge_is_a_failed_outcome_not_an_error(
    provider: StripePaymentProvider, customer_ref: str
) -> None:
    request = charge_request(customer_ref, await attach(provider, customer_ref, "pm_card_chargeCustomerFail"))

    outcome = await provider.charge(request)

    assert outcome.status is PaymentStatus.FAILED
    assert outcome.declined
    assert outcome.failure_reason == "Your card was declined."
    assert outcome.payment_ref.startswith("pi_")
    assert await provider.retrieve(payment_ref=outcome.payment_ref, order_id=request.order_id) == outcome


@pytest.mark.localstripe
async def test_a_3ds_card_requires_action_then_succeeds_once_authenticated(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    method_ref = await attach(provider, customer_ref, await create_card_payment_method(localstripe.base_url))
    request = charge_request(customer_ref, method_ref)

    pending = await provider.charge(request)
    assert pending.status is PaymentStatus.REQUIRES_ACTION
    assert pending.client_secret is not None
    assert pending.client_secret.startswith(f"{pending.payment_ref}_secret_")

    await authenticate_payment_intent(
        localstripe.base_url,
        pending.payment_ref,
        success=True,
        client_secret=pending.client_secret,
    )

    by_ref = await provider.retrieve(payment_ref=pending.payment_ref, order_id=request.order_id)
    by_order = await provider.retrieve(payment_ref=None, order_id=request.order_id)
    assert by_ref == by_order == PaymentOutcome(pending.payment_ref, request.order_id, PaymentStatus.SUCCEEDED)


@pytest.mark.localstripe
async def test_a_failed_3ds_authentication_fails_the_payment(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    method_ref = await attach(provider, customer_ref, await create_card_payment_method(localstripe.base_url))
    request = charge_request(customer_ref, method_ref)
    pending = await provider.charge(request)

    await authenticate_payment_intent(localstripe.base_url, pending.payment_ref, success=False)

    outcome = await provider.retrieve(payment_ref=pending.payment_ref, order_id=request.order_id)
    assert outcome is not None
    assert outcome.status is PaymentStatus.FAILED
    assert outcome.failure_reason == "The provided PaymentMethod has failed authentication."


@pytest.mark.localstripe
async def test_charging_an_order_twice_makes_one_payment_intent(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    request = charge_request(customer_ref, await attach(provider, customer_ref, "pm_card_visa"))

    first = await provider.charge(request)
    second = await provider.charge(request)

    assert second == first
    assert len(await intents_for_order(localstripe, request.order_id)) == 1


@pytest.mark.localstripe
async def test_concurrent_charges_of_one_order_make_one_payment_intent(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    request = charge_request(customer_ref, await attach(provider, customer_ref, "pm_card_visa"))

    first, second = await asyncio.gather(provider.charge(request), provider.charge(request))

    assert first == second
    assert len(await intents_for_order(localstripe, request.order_id)) == 1


@pytest.mark.localstripe
async def test_a_restarted_gateway_finds_the_first_payment_of_a_declined_order(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    request = charge_request(customer_ref, await attach(provider, customer_ref, "pm_card_chargeCustomerFail"))
    first = await provider.charge(request)

    restarted = StripePaymentProvider(LOCALSTRIPE_API_KEY, localstripe.base_url, timeout_s=5)
    try:
        again = await restarted.charge(request)
    finally:
        await restarted.aclose()

    assert again == first
    assert len(await intents_for_order(localstripe, request.order_id)) == 1


@pytest.mark.localstripe
async def test_retrieve_without_a_payment_for_the_order_is_none(
    provider: StripePaymentProvider,
) -> None:
    assert await provider.retrieve(payment_ref=None, order_id=new_id("order")) is None


# --- an unavailable Stripe ----------------------------------------------------------


async def test_an_unreachable_api_raises_provider_unavailable_quickly() -> None:
    unreachable = StripePaymentProvider(LOCALSTRIPE_API_KEY, f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable):
            await unreachable.ensure_customer(customer_id="c", name="n", existing_ref=None)
        with pytest.raises(ProviderUnavailable):
            await unreachable.charge(charge_request("cus_x", "pm_x"))
    finally:
        await unreachable.aclose()
    # Both calls, each with the SDK's two retries and their backoff.
    assert time.monotonic() - started < 8


async def test_an_api_that_does_not_answer_times_out_as_provider_unavailable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        base = f"http://127.0.0.1:{silent.getsockname()[1]}"
        provider = StripePaymentProvider(LOCALSTRIPE_API_KEY, base, timeout_s=0.5, max_network_retries=0)
        started = time.monotonic()
        try:
            with pytest.raises(ProviderUnavailable):
                await provider.retrieve(payment_ref="pi_x", order_id="order_x")
        finally:
            await provider.aclose()
    assert time.monotonic() - started < 3


@pytest.mark.localstripe
async def test_a_rejected_api_key_raises_provider_unavailable_without_the_key(
    localstripe: LocalStripe,
) -> None:
    provider = StripePaymentProvider("not_a_secret_key", localstripe.base_url)
    try:
        with pytest.raises(ProviderUnavailable) as raised:
            await provider.ensure_customer(customer_id="c", name="n", existing_ref=None)
    finally:
        await provider.aclose()
    assert "not_a_secret_key" not in str(raised.value)


# --- webhooks ------------------------------------------------------------------------


Delivery = tuple[dict[str, str], bytes]
"""A webhook delivery's headers and body."""


class WebhookListener:
    """The smallest HTTP server that records POSTed webhook deliveries."""

    def __init__(self) -> None:
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/webhooks/stripe"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
        await self.deliveries.put((headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def deliveries_about(self, *payment_refs: str) -> dict[str, Delivery]:
        """The first delivery about each PaymentIntent (others are dropped)."""
        found: dict[str, Delivery] = {}
        async with asyncio.timeout(10):
            while len(found) < len(payment_refs):
                headers, body = await self.deliveries.get()
                about = json.loads(body)["data"]["object"].get("id")
                if about in payment_refs:
                    found.setdefault(about, (headers, body))
        return found


@pytest.mark.localstripe
async def test_localstripe_webhooks_are_signed_like_stripe_ones(
    provider: StripePaymentProvider, customer_ref: str, localstripe: LocalStripe
) -> None:
    async with WebhookListener() as listener:
        await register_webhook(localstripe.base_url, "provider-tests", listener.url, WEBHOOK_SECRET)
        try:
            visa = await attach(provider, customer_ref, "pm_card_visa")
            failing = await attach(provider, customer_ref, "pm_card_chargeCustomerFail")
            paid = await provider.charge(charge_request(customer_ref, visa))
            declined = await provider.charge(charge_request(customer_ref, failing))
            deliveries = await listener.deliveries_about(paid.payment_ref, declined.payment_ref)
        finally:  # later events would go to a closed port
            await register_webhook(localstripe.base_url, "provider-tests", listener.url, WEBHOOK_SECRET, events=[])

    paid_headers, paid_body = deliveries[paid.payment_ref]
    declined_headers, declined_body = deliveries[declined.payment_ref]
    assert paid_headers["Stripe-Signature"].startswith("t=")
    assert ",v1=" in paid_headers["Stripe-Signature"]
    paid_event = provider.verify_webhook(paid_body, paid_headers["Stripe-Signature"], WEBHOOK_SECRET)
    declined_event = provider.verify_webhook(declined_body, declined_headers["Stripe-Signature"], WEBHOOK_SECRET)
    assert paid_event.type == "payment_intent.succeeded"
    assert declined_event.type == "payment_intent.payment_failed"
    # What the webhook route does next: re-read the PaymentIntent the event names.
    order_id = paid_event.data.object.metadata["order_id"]
    assert await provider.retrieve(payment_ref=paid_event.data.object.id, order_id=order_id) == paid
    with pytest.raises(InvalidWebhook):
        provider.verify_webhook(paid_body, paid_headers["Stripe-Signature"], "whsec_wrong")
    with pytest.raises(InvalidWebhook):
        provider.verify_webhook(paid_body, "garbage", WEBHOOK_SECRET)


async def test_publish_forwards_to_the_started_handler() -> None:
    provider = StripePaymentProvider(LOCALSTRIPE_API_KEY, f"http://127.0.0.1:{free_port()}")
    received: list[PaymentOutcome] = []

    async def on_event(outcome: PaymentOutcome) -> None:
        received.append(outcome)

    outcome = PaymentOutcome("pi_1", "order_1", PaymentStatus.SUCCEEDED)
    try:
        await provider.publish(outcome)  # before start: dropped
        await provider.start(on_event)
        await provider.publish(outcome)
    finally:
        await provider.aclose()

    assert received == [outcome]


# --- PaymentIntent shapes localstripe never produces -----------------------------------


def payment_intent(status: str, **fields: Any) -> stripe.PaymentIntent:
    values = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": status,
        "client_secret": "pi_1_secret_x",
        "metadata": {"order_id": "order_1"},
        "last_payment_error": None,
        **fields,
    }
    return stripe.PaymentIntent.construct_from(values, "sk_test_unused")


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        pytest.param(
            payment_intent("processing"),
            PaymentOutcome("pi_1", "order_1", PaymentStatus.PROCESSING),
            id="processing",
        ),
        pytest.param(
            payment_intent("canceled", cancellation_reason="abandoned"),
            PaymentOutcome("pi_1", "order_1", PaymentStatus.CANCELED, failure_reason="abandoned"),
            id="canceled",
        ),
        pytest.param(
            # Stripe's answer to an off-session charge that needs 3-D Secure.
            payment_intent(
                "requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": "Your card was declined. This transaction requires authentication.",
                },
            ),
            PaymentOutcome(
                "pi_1",
                "order_1",
                PaymentStatus.REQUIRES_ACTION,
                client_secret="pi_1_secret_x",
            ),
            id="authentication-required",
        ),
        pytest.param(
            payment_intent(
                "requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                },
            ),
            PaymentOutcome(
                "pi_1",
                "order_1",
                PaymentStatus.FAILED,
                failure_reason="Your card has insufficient funds.",
                declined=True,
            ),
            id="declined",
        ),
        pytest.param(
            payment_intent("succeeded", metadata={}),
            PaymentOutcome("pi_1", None, PaymentStatus.SUCCEEDED),
            id="not-ours",
        ),
    ],
)
def test_outcome_from_payment_intent(intent: stripe.PaymentIntent, expected: PaymentOutcome) -> None:
    assert outcome_from_payment_intent(intent) == expected

"""idempotencyKey: the same key for the same customer returns the first order
and never charges twice; different input under a used key is refused."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import col

from billing.onboarding import DemoTenant
from models import Order, SandboxPayment
from tests.api.helpers import (  # noqa: F401 - fixtures
    SHARED_LOOP,
    UPGRADE_STORAGE,
    add_card,
    buy,
    codes,
    count_rows,
    error_codes,
    module_gateway,
    only_product,
    product,
    rows,
    shared_gateway,
    upgrade,
    wait_for_status,
)
from tests.support.gateway import GatewayServer, GraphQLClient

pytestmark = SHARED_LOOP


KEY_FIELD = ["input", "idempotencyKey"]


async def charge_count(gateway: GatewayServer, customer_id: str) -> int:
    order_ids = [o.id for o in await rows(gateway, Order, Order.customer_id == customer_id)]
    return await count_rows(gateway, SandboxPayment, col(SandboxPayment.order_id).in_(order_ids))


async def ready_customer(gateway: GatewayServer, tenant: DemoTenant, index: int = 0) -> tuple[GraphQLClient, str, str]:
    """(client, customer id, product id) for a customer with a visa on file."""
    customer = tenant.customers[index]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, customer.id)
    await add_card(client, customer.id)
    return client, customer.id, held["id"]


async def test_a_replay_returns_the_first_order_and_charges_once(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client, customer_id, product_id = await ready_customer(gateway, tenant)

    first = await buy(client, customer_id, product_id, 3, idempotencyKey="order-2025-001")
    replay_while_processing = await buy(client, customer_id, product_id, 3, idempotencyKey="order-2025-001")
    settled = await wait_for_status(client, customer_id, first["order"]["id"])
    replay_after_success = await buy(client, customer_id, product_id, 3, idempotencyKey="order-2025-001")

    assert first["userErrors"] == replay_while_processing["userErrors"] == replay_after_success["userErrors"] == []
    order_id = first["order"]["id"]
    assert replay_while_processing["order"]["id"] == order_id
    assert replay_after_success["order"]["id"] == order_id
    assert settled["status"] == replay_after_success["order"]["status"] == "SUCCEEDED"
    assert replay_after_success["order"]["total"] == first["order"]["total"]
    assert await count_rows(gateway, Order, Order.customer_id == customer_id) == 1
    assert await charge_count(gateway, customer_id) == 1
    assert (await product(client, customer_id, product_id))["totalLicenses"] == 13


async def test_the_same_key_with_different_input_is_refused(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client, customer_id, product_id = await ready_customer(gateway, tenant)
    amex = await add_card(client, customer_id, "pm_card_amex")
    globex_product = (await only_product(client, tenant.customers[1].id))["id"]
    first = await buy(client, customer_id, product_id, 3, idempotencyKey="k1")
    await wait_for_status(client, customer_id, first["order"]["id"])

    refused = [
        await buy(client, customer_id, product_id, 4, idempotencyKey="k1"),
        await buy(client, customer_id, product_id, 3, idempotencyKey="k1", paymentMethodId=amex["id"]),
        await buy(client, customer_id, globex_product, 3, idempotencyKey="k1"),
        await upgrade(client, customer_id, "plan_storage_1tb", 3, idempotencyKey="k1"),
    ]

    for payload in refused:
        assert payload["order"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("IDEMPOTENCY_KEY_REUSED", KEY_FIELD)]
    assert await count_rows(gateway, Order, Order.customer_id == customer_id) == 1
    assert await charge_count(gateway, customer_id) == 1
    assert (await product(client, customer_id, product_id))["totalLicenses"] == 13


async def test_storage_upgrades_are_idempotent_too(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client, customer_id, _ = await ready_customer(gateway, tenant)

    first = await upgrade(client, customer_id, "plan_storage_1tb", 2, "YEARLY", idempotencyKey="storage-1")
    settled = await wait_for_status(client, customer_id, first["order"]["id"])
    replay = await upgrade(client, customer_id, "plan_storage_1tb", 2, "YEARLY", idempotencyKey="storage-1")
    other_interval = await upgrade(client, customer_id, "plan_storage_1tb", 2, "MONTHLY", idempotencyKey="storage-1")

    assert settled["status"] == "SUCCEEDED"
    assert replay["userErrors"] == [] and replay["order"]["id"] == first["order"]["id"]
    assert codes(other_interval) == ["IDEMPOTENCY_KEY_REUSED"]
    assert await charge_count(gateway, customer_id) == 1


async def test_a_replayed_declined_order_stays_declined_and_is_not_charged_again(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    customer_id = tenant.customers[0].id
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product_id = (await only_product(client, customer_id))["id"]
    await add_card(client, customer_id, "pm_card_chargeCustomerFail")

    first = await buy(client, customer_id, product_id, 1, idempotencyKey="declined")
    replay = await buy(client, customer_id, product_id, 1, idempotencyKey="declined")

    assert first["order"]["status"] == replay["order"]["status"] == "FAILED"
    assert replay["order"]["id"] == first["order"]["id"]
    assert codes(first) == codes(replay) == ["CARD_DECLINED"]
    assert await charge_count(gateway, customer_id) == 1
    assert (await product(client, customer_id, product_id))["totalLicenses"] == 10


async def test_a_replayed_order_awaiting_authentication_returns_its_client_secret(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    customer_id = tenant.customers[0].id
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product_id = (await only_product(client, customer_id))["id"]
    await add_card(client, customer_id, "pm_card_authenticationRequired")

    first = await buy(client, customer_id, product_id, 1, idempotencyKey="3ds")
    replay = await buy(client, customer_id, product_id, 1, idempotencyKey="3ds")

    assert replay["order"]["id"] == first["order"]["id"]
    assert replay["order"]["status"] == "REQUIRES_ACTION"
    assert replay["order"]["clientSecret"] == first["order"]["clientSecret"] is not None
    assert await charge_count(gateway, customer_id) == 1


async def test_idempotency_keys_must_be_1_to_255_characters(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client, customer_id, product_id = await ready_customer(gateway, tenant)

    for key in ("", "k" * 256, "k" * 10_000):
        for response in (
            await client.execute(
                "mutation($c: ID!, $i: BuyLicensesInput!) "
                "{ buyLicenses(actingCustomer: $c, input: $i) { order { id } } }",
                {"c": customer_id, "i": {"productId": product_id, "quantity": 1, "idempotencyKey": key}},
            ),
            await client.execute(
                UPGRADE_STORAGE,
                {
                    "c": customer_id,
                    "input": {
                        "planId": "plan_storage_1tb",
                        "licenses": 1,
                        "billingInterval": "MONTHLY",
                        "idempotencyKey": key,
                    },
                },
            ),
        ):
            assert response["data"] is None, len(key)
            assert error_codes(response) == ["BAD_USER_INPUT"], (len(key), response)
    assert await count_rows(gateway, Order, Order.customer_id == customer_id) == 0

    longest = await buy(client, customer_id, product_id, 1, idempotencyKey="k" * 255)
    shortest = await buy(client, customer_id, product_id, 1, idempotencyKey="k")
    assert longest["userErrors"] == [] and shortest["userErrors"] == []
    assert longest["order"]["id"] != shortest["order"]["id"]


async def test_keys_are_scoped_to_one_customer(gateway: GatewayServer) -> None:
    ours = await gateway.tenant()
    theirs = await gateway.tenant()
    acme_client, acme_id, acme_product = await ready_customer(gateway, ours, 0)
    _, globex_id, globex_product = await ready_customer(gateway, ours, 1)
    their_client, their_id, their_product = await ready_customer(gateway, theirs, 0)

    placed = [
        await buy(acme_client, acme_id, acme_product, 1, idempotencyKey="shared-key"),
        await buy(acme_client, globex_id, globex_product, 2, idempotencyKey="shared-key"),
        await buy(their_client, their_id, their_product, 3, idempotencyKey="shared-key"),
    ]

    assert all(p["userErrors"] == [] for p in placed)
    assert len({p["order"]["id"] for p in placed}) == 3
    for client, customer_id, payload in zip(
        (acme_client, acme_client, their_client), (acme_id, globex_id, their_id), placed, strict=True
    ):
        assert (await wait_for_status(client, customer_id, payload["order"]["id"]))["status"] == "SUCCEEDED"
        assert await charge_count(gateway, customer_id) == 1
    assert (await product(acme_client, acme_id, acme_product))["totalLicenses"] == 11
    assert (await product(acme_client, globex_id, globex_product))["totalLicenses"] == 27
    assert (await product(their_client, their_id, their_product))["totalLicenses"] == 13


async def test_concurrent_replays_make_one_order_and_one_charge(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client, customer_id, product_id = await ready_customer(gateway, tenant)

    payloads: list[dict[str, Any]] = await asyncio.gather(
        *(buy(client, customer_id, product_id, 5, idempotencyKey="burst") for _ in range(10))
    )

    assert all(p["userErrors"] == [] for p in payloads), payloads
    order_ids = {p["order"]["id"] for p in payloads}
    assert len(order_ids) == 1
    (order_id,) = order_ids
    assert (await wait_for_status(client, customer_id, order_id))["status"] == "SUCCEEDED"
    assert await count_rows(gateway, Order, Order.customer_id == customer_id) == 1
    assert await charge_count(gateway, customer_id) == 1
    assert (await product(client, customer_id, product_id))["totalLicenses"] == 15

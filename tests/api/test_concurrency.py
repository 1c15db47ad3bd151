"""Many purchases at once on one SQLite file: no lost updates, no "database is locked"."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlmodel import col

from models import Order, SandboxPayment
from tests.api.helpers import (  # noqa: F401 - fixtures
    SHARED_LOOP,
    add_card,
    billing_details,
    buy,
    count_rows,
    module_gateway,
    only_product,
    product,
    shared_gateway,
    storage_products_of,
    upgrade,
    wait_for_status,
)
from tests.support.gateway import GatewayServer

pytestmark = SHARED_LOOP


def no_lock_errors(caplog: pytest.LogCaptureFixture, responses: list[Any]) -> None:
    assert not any("locked" in str(r).lower() for r in responses)
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or "locked" in r.getMessage()]
    assert problems == []


async def test_30_concurrent_purchases_add_exactly_their_sum(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await add_card(client, acme.id)
    quantities = list(range(1, 31))

    responses = await asyncio.gather(
        *(
            client.execute(
                "mutation($c: ID!, $i: BuyLicensesInput!) { buyLicenses(actingCustomer: $c, input: $i) "
                "{ order { id status } userErrors { code } } }",
                {"c": acme.id, "i": {"productId": held["id"], "quantity": q}},
            )
            for q in quantities
        )
    )

    no_lock_errors(caplog, responses)
    assert all("errors" not in r for r in responses), responses
    payloads = [r["data"]["buyLicenses"] for r in responses]
    assert all(p["userErrors"] == [] for p in payloads)
    order_ids = [p["order"]["id"] for p in payloads]
    assert len(set(order_ids)) == 30
    settled = [await wait_for_status(client, acme.id, order_id) for order_id in order_ids]
    assert {o["status"] for o in settled} == {"SUCCEEDED"}
    after = await product(client, acme.id, held["id"])
    assert after["totalLicenses"] == 10 + sum(quantities) == 475
    assert after["availableLicenses"] == 475 - 7
    assert await count_rows(gateway, Order, Order.customer_id == acme.id) == 30
    assert await count_rows(gateway, SandboxPayment, col(SandboxPayment.order_id).in_(order_ids)) == 30
    no_lock_errors(caplog, [])


async def test_concurrent_purchases_across_customers_and_partners(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    tenants = [await gateway.tenant(), await gateway.tenant()]
    work: list[tuple[Any, str, str]] = []
    for tenant in tenants:
        client = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
        for customer in tenant.customers:
            await add_card(client, customer.id)
            work.append((client, customer.id, (await only_product(client, customer.id))["id"]))

    payloads = await asyncio.gather(*(buy(c, cid, pid, 2) for c, cid, pid in work for _ in range(5)))

    assert all(p["userErrors"] == [] for p in payloads)
    for payload, (client, customer_id, _) in zip(payloads, [w for w in work for _ in range(5)], strict=True):
        assert (await wait_for_status(client, customer_id, payload["order"]["id"]))["status"] == "SUCCEEDED"
    totals = [(await product(c, cid, pid))["totalLicenses"] for c, cid, pid in work]
    assert totals == [10 + 10, 25 + 10, 10 + 10, 25 + 10]
    no_lock_errors(caplog, payloads)


async def test_concurrent_first_payment_methods_make_exactly_one_primary(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])

    added = await asyncio.gather(*(add_card(client, acme.id, "pm_card_visa") for _ in range(8)))

    assert sum(m["isPrimary"] for m in added) == 1
    details = await billing_details(client, acme.id)
    assert len(details["paymentMethods"]) == 8
    assert [m["id"] for m in details["paymentMethods"] if m["isPrimary"]] == [details["primaryPaymentMethod"]["id"]]


async def test_concurrent_first_storage_orders_create_one_storage_product(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)

    payloads = await asyncio.gather(*(upgrade(client, acme.id, "plan_storage_250gb", 4) for _ in range(5)))

    placed = [p for p in payloads if p["order"] is not None]
    refused = [p for p in payloads if p["order"] is None]
    # orders are placed one at a time: the first is in flight or done when the others are priced
    assert len(placed) == 1
    assert placed[0]["userErrors"] == []
    assert all([e["code"] for e in p["userErrors"]] in (["ORDER_IN_PROGRESS"], ["NOTHING_TO_CHANGE"]) for p in refused)
    for payload in placed:
        await wait_for_status(client, acme.id, payload["order"]["id"])
    (storage,) = await storage_products_of(client, acme.id)
    assert (storage["plan"]["id"], storage["totalLicenses"]) == ("plan_storage_250gb", 4)

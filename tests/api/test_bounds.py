"""Numbers and counts that must stay within what the API can say: a product's
storage within GraphQL's Int, and the per-socket subscription limit answered
with a code like every other error."""

from __future__ import annotations

import json

from sqlmodel import col, update

from models import Product
from tests.api.helpers import (  # noqa: F401 - fixtures
    SHARED_LOOP,
    add_card,
    buy,
    codes,
    module_gateway,
    shared_gateway,
    storage_products_of,
    upgrade_and_settle,
    wait_for_status,
)
from tests.support.gateway import GatewayServer

pytestmark = SHARED_LOOP

GRAPHQL_INT_MAX = 2**31 - 1
SUBSCRIPTIONS_PER_SOCKET = 100  # API.md, "Limits, round 2"


async def _set_total(gateway: GatewayServer, product_id: str, total: int) -> None:
    async with gateway.runtime.db.orm(write=True) as session:
        statement = update(Product).where(col(Product.id) == product_id).values(total_licenses=total)
        await session.exec(statement)


async def test_a_product_holds_at_most_100000_licenses_so_storage_fits_an_int(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0].id
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme)
    await upgrade_and_settle(client, acme, "plan_storage_5tb", 1)
    (storage,) = await storage_products_of(client, acme)
    await _set_total(gateway, storage["id"], 99_999)

    too_many = await buy(client, acme, storage["id"], 2)
    assert codes(too_many) == ["INVALID_QUANTITY"] and "100,000" in too_many["userErrors"][0]["message"]
    bought = await buy(client, acme, storage["id"], 1)
    assert bought["userErrors"] == []
    await wait_for_status(client, acme, bought["order"]["id"], {"SUCCEEDED"})
    (storage,) = await storage_products_of(client, acme)
    assert (storage["totalLicenses"], storage["storageGb"]) == (100_000, 5120 * 100_000)

    # Past 430k licenses of 5 TB the product would overflow Int: one made
    # outside the API still reads, at Int's maximum, instead of failing.
    await _set_total(gateway, storage["id"], 500_000)
    (storage,) = await storage_products_of(client, acme)
    assert (storage["totalLicenses"], storage["storageGb"]) == (500_000, GRAPHQL_INT_MAX)


async def test_the_subscription_limit_carries_a_code(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    query = "subscription { orderStatusChanged { cursor } }"
    async with gateway.websocket(tenant.tokens["PARTNER_OWNER"]) as ws:
        for _ in range(SUBSCRIPTIONS_PER_SOCKET):
            await ws.subscribe(query)
        over = await ws.subscribe(query)
        message = await ws.receive()
        assert message["id"] == over and message["type"] == "error", message
        (error,) = message["payload"]
        assert error["message"] == "Subscription limit reached"
        assert error["extensions"]["code"] == "RATE_LIMITED"
        # Completing one makes room again.
        await ws.conn.send(json.dumps({"id": "1", "type": "complete"}))
        again = await ws.subscribe(query)
        assert again != over

"""GraphQL documents and small steps shared by the multi-instance tests."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing.onboarding import seed_demo
from models.database import Database
from tests.support.gateway import GraphQLClient, GraphQLWebSocket
from tests.support.processes import GatewayProcess

ADD_CARD = """
mutation($c: ID!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa", makePrimary: true}) {
    paymentMethod { id } userErrors { code message }
  }
}"""
PRODUCTS = "query($c: ID!) { products(actingCustomer: $c) { id totalLicenses } }"
BUY = """
mutation($c: ID!, $p: ID!, $n: Int!, $key: String) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: $n, idempotencyKey: $key}) {
    order { id status total { minorUnits } } userErrors { code message }
  }
}"""
CHANGES = """
subscription($c: ID, $after: String) {
  orderStatusChanged(actingCustomer: $c, after: $after) { status cursor occurredAt order { id } }
}"""

# What a server log must never contain after a test: an unhandled exception,
# or a deadlock PostgreSQL had to break.
_LOG_PROBLEMS = re.compile(r"Traceback|deadlock detected|ERROR", re.IGNORECASE)


@dataclass(frozen=True)
class Buyer:
    """One demo partner's owner, acting for its first customer, with a card on file."""

    token: str
    partner_id: str
    customer_id: str
    product_id: str


async def new_buyer(db: Database, via: GatewayProcess) -> Buyer:
    tenant = await seed_demo(db)
    token = tenant.tokens["PARTNER_OWNER"]
    customer = tenant.customers[0].id
    async with via.client(token) as client:
        added = await client.data(ADD_CARD, {"c": customer})
        assert added["addPaymentMethod"]["userErrors"] == [], added
        product = (await client.data(PRODUCTS, {"c": customer}))["products"][0]["id"]
    return Buyer(token=token, partner_id=tenant.partner.id, customer_id=customer, product_id=product)


async def buy(client: GraphQLClient, buyer: Buyer, quantity: int = 1, key: str | None = None) -> dict[str, Any]:
    """A purchase that must be accepted; returns its order."""
    variables = {"c": buyer.customer_id, "p": buyer.product_id, "n": quantity, "key": key}
    payload = (await client.data(BUY, variables))["buyLicenses"]
    assert payload["userErrors"] == [], payload
    order: dict[str, Any] = payload["order"]
    return order


async def total_licenses(client: GraphQLClient, buyer: Buyer) -> int:
    products = (await client.data(PRODUCTS, {"c": buyer.customer_id}))["products"]
    return int(next(p["totalLicenses"] for p in products if p["id"] == buyer.product_id))


@dataclass(frozen=True)
class Received:
    event: dict[str, Any]
    at: float  # time.time() when the message arrived

    @property
    def latency_s(self) -> float:
        """From the event's commit (its occurredAt, stamped just before) to its arrival."""
        return self.at - datetime.fromisoformat(self.event["occurredAt"]).timestamp()


async def receive_events(ws: GraphQLWebSocket, op_id: str, count: int, timeout: float = 10.0) -> list[Received]:
    received: list[Received] = []
    async with asyncio.timeout(timeout):
        while len(received) < count:
            data = await ws.next_data(op_id, timeout=timeout)
            received.append(Received(data["orderStatusChanged"], time.time()))
    return received


async def until_succeeded(ws: GraphQLWebSocket, op_id: str, order_ids: set[str]) -> list[Received]:
    """Events from an ``orderStatusChanged`` subscription until each of ``order_ids`` has succeeded."""
    received: list[Received] = []
    pending = set(order_ids)
    while pending:
        (item,) = await receive_events(ws, op_id, count=1, timeout=10)
        received.append(item)
        if item.event["status"] == "SUCCEEDED":
            pending.discard(item.event["order"]["id"])
    return received


async def warm_up(ws: GraphQLWebSocket, op_id: str, client: GraphQLClient, buyer: Buyer) -> Received:
    """Make sure a live ``orderStatusChanged`` subscription is registered: the
    protocol does not acknowledge ``subscribe``, so place an order and wait
    until its SUCCEEDED arrives (earlier events of it may be missed); every
    event after that one is then guaranteed to reach the subscriber."""
    order = await buy(client, buyer)
    while True:
        (item,) = await receive_events(ws, op_id, count=1, timeout=10)
        if item.event["order"]["id"] == order["id"] and item.event["status"] == "SUCCEEDED":
            return item


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str | Callable[[], str], timeout: float = 30.0
) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds saying ``what``
    (a callable is asked only then, so it can describe the last state seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what() if callable(what) else what}")


def assert_clean_logs(*gateways: GatewayProcess) -> None:
    for gateway in gateways:
        problems = [line for line in gateway.log_text().splitlines() if _LOG_PROBLEMS.search(line)]
        assert not problems, f"{gateway} logged:\n" + "\n".join(problems[:20]) + "\n---\n" + gateway.log_tail()

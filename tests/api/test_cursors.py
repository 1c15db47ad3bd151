"""Cursors are opaque: they tell nothing about other tenants (not the global
event sequence, not timestamps), cannot be forged or carried to another
partner or customer, stay the same for the same event, and are understood by
every instance on the database and after a restart."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from models import OrderEvent
from tests.conftest import sqlite_settings
from tests.subscriptions.test_streams import CHANGES, _buy, _collect, _customer_with_card
from tests.support.gateway import GatewayServer, serve_gateway

ORDERS = """
query($c: ID!, $after: String) {
  orders(actingCustomer: $c, first: 1, after: $after) { edges { cursor node { id createdAt } } }
}"""
CUSTOMERS = "query($after: String) { customers(first: 1, after: $after) { edges { cursor node { id name } } } }"


def _readable(cursor: str) -> Any:
    """What a client could read out of a cursor: base64 JSON, as cursors used to be."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None


def _plain_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


async def _registered(gateway: GatewayServer, count: int) -> None:
    """Until the hub has ``count`` subscribers (the protocol does not acknowledge a subscribe)."""
    for _ in range(1000):  # 10 s at most
        if gateway.runtime.hub.subscriber_count >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} subscriptions not registered within 10 s")


async def _events(gateway: GatewayServer, token: str, customer: str, product: str) -> list[dict[str, Any]]:
    async with gateway.websocket(token) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer})
        await _registered(gateway, 1)
        await _buy(gateway, token, customer, product)
        return await _collect(ws, op, 3)


async def _subscribe_error(gateway: GatewayServer, token: str, variables: dict[str, Any]) -> str:
    async with gateway.websocket(token) as ws:
        op = await ws.subscribe(CHANGES, variables)
        message = await ws.receive()
    assert message["id"] == op and message["type"] == "error", message
    code: str = message["payload"][0]["extensions"]["code"]
    return code


async def test_event_cursors_reveal_nothing_and_stay_with_their_partner(gateway: GatewayServer) -> None:
    busy, busy_customer, busy_product = await _customer_with_card(gateway)
    for _ in range(3):  # another partner's activity a new partner must not learn about
        await _buy(gateway, busy.tokens["PARTNER_OWNER"], busy_customer, busy_product)
    newcomer, customer, product = await _customer_with_card(gateway)
    owner = newcomer.tokens["PARTNER_OWNER"]

    events = await _events(gateway, owner, customer, product)

    async with gateway.runtime.db.orm() as session:
        rows = await session.exec(
            select(OrderEvent.seq).where(col(OrderEvent.customer_id) == customer).order_by(col(OrderEvent.seq))
        )
        seqs = list(rows.all())
    assert seqs[0] is not None and seqs[0] > 3  # the global sequence is along: exactly what must not show
    for event, seq in zip(events, seqs, strict=True):
        assert _readable(event["cursor"]) is None
        assert _plain_cursor("evt", seq) != event["cursor"]

    # Still resumable by its partner ...
    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer, "after": events[0]["cursor"]})
        resumed = await _collect(ws, op, 2)
    assert resumed == events[1:]
    # ... and useless to any other partner, or forged.
    stranger = busy.tokens["PARTNER_OWNER"]
    assert await _subscribe_error(gateway, stranger, {"after": events[0]["cursor"]}) == "BAD_USER_INPUT"
    for forged in (
        _plain_cursor("evt", seqs[0]),
        _plain_cursor("evt", 2**70),
        _plain_cursor("evt", "1"),
        events[0]["cursor"][:-2] + ("AA" if not events[0]["cursor"].endswith("AA") else "BB"),
        "x" * 600,
        "\u0000",
        "\ud800",
    ):
        assert await _subscribe_error(gateway, owner, {"after": forged}) == "BAD_USER_INPUT", forged


async def test_the_same_event_has_the_same_cursor_for_every_subscriber(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner, finance = tenant.tokens["PARTNER_OWNER"], tenant.tokens["PARTNER_FINANCE_ADMIN"]
    async with gateway.websocket(owner) as one, gateway.websocket(finance) as other:
        op_one = await one.subscribe(CHANGES, {"c": customer})
        op_other = await other.subscribe(CHANGES, {})
        await _registered(gateway, 2)
        await _buy(gateway, owner, customer, product)
        first, second = await _collect(one, op_one, 3), await _collect(other, op_other, 3)
    assert [e["cursor"] for e in first] == [e["cursor"] for e in second]


async def test_page_cursors_are_sealed_to_their_customer_and_partner(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    for _ in range(2):
        await _buy(gateway, owner, customer, product)
    client = gateway.client(owner)

    page = (await client.data(ORDERS, {"c": customer}))["orders"]["edges"]
    cursor = page[0]["cursor"]
    assert _readable(cursor) is None and page[0]["node"]["id"] not in cursor
    following = (await client.data(ORDERS, {"c": customer, "after": cursor}))["orders"]["edges"]
    assert following and following[0]["node"]["id"] != page[0]["node"]["id"]
    # Another customer of the same partner: the cursor names nothing there.
    sibling = tenant.customers[1].id
    assert await client.error_code(ORDERS, {"c": sibling, "after": cursor}) == "BAD_USER_INPUT"

    customers = (await client.data(CUSTOMERS))["customers"]["edges"]
    assert _readable(customers[0]["cursor"]) is None
    assert (await client.data(CUSTOMERS, {"after": customers[0]["cursor"]}))["customers"]["edges"]
    other = await gateway.tenant()
    stranger = gateway.client(other.tokens["PARTNER_OWNER"])
    assert await stranger.error_code(CUSTOMERS, {"after": customers[0]["cursor"]}) == "BAD_USER_INPUT"
    old_style = _plain_cursor("cst", "Acme Dental", customer)
    assert await client.error_code(CUSTOMERS, {"after": old_style}) == "BAD_USER_INPUT"


async def test_instances_on_one_database_agree_on_cursors_across_restarts(tmp_path: Path) -> None:
    """No configuration: the first start stores a key in the database, every
    instance on it uses that one. CURSOR_SECRET replaces it (and old cursors
    are then refused, not misread)."""
    settings = sqlite_settings(tmp_path)
    async with serve_gateway(settings) as first, serve_gateway(settings) as second:
        tenant, customer, product = await _customer_with_card(first)
        owner = tenant.tokens["PARTNER_OWNER"]
        events = await _events(first, owner, customer, product)
        async with second.websocket(owner) as ws:
            op = await ws.subscribe(CHANGES, {"c": customer, "after": events[0]["cursor"]})
            assert await _collect(ws, op, 2) == events[1:]
    async with serve_gateway(settings) as restarted, restarted.websocket(owner) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer, "after": events[1]["cursor"]})
        assert await _collect(ws, op, 1) == events[2:]

    rotated = sqlite_settings(tmp_path, cursor_secret="s" * 40)
    async with serve_gateway(rotated) as gateway:
        assert await _subscribe_error(gateway, owner, {"c": customer, "after": events[0]["cursor"]}) == (
            "BAD_USER_INPUT"
        )


@pytest.mark.parametrize("secret", ["", "too short"])
def test_a_short_cursor_secret_is_refused(tmp_path: Path, secret: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        sqlite_settings(tmp_path, cursor_secret=secret or "x")

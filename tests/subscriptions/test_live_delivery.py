"""``orderStatusChanged`` sent through gateway.live: the same messages as
Strawberry's own subscription loop, each event's payload executed and encoded
once per distinct subscription, and nothing kept once the subscribers leave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

import subscriptions.live
from gateway.live import live_document
from gateway.sockets import _unless_closed
from subscriptions.live import distinct_live_subscriptions
from tests.subscriptions.test_streams import CHANGES, _buy, _customer_with_card
from tests.support.gateway import GatewayServer

# The same selection as CHANGES, spread from a fragment: gateway.live leaves
# it to Strawberry's loop, which gives the reference answer.
CHANGES_BY_STRAWBERRY = """
subscription($c: ID, $after: String) { ...Changes }
fragment Changes on Subscription {
  orderStatusChanged(actingCustomer: $c, after: $after) { status cursor order { id } }
}"""
CHANGES_WITH_TOTAL = """
subscription($c: ID) { orderStatusChanged(actingCustomer: $c) { status order { id total { amount } } } }"""


def test_only_valid_subscriptions_of_order_status_changed_take_the_live_path(gateway: GatewayServer) -> None:
    documents = gateway.app.graphql.schema.documents
    assert live_document(documents, CHANGES, None) is not None
    assert live_document(documents, "subscription Named { orderStatusChanged { status } }", "Named") is not None
    refused = [
        CHANGES_BY_STRAWBERRY,  # a fragment at the root
        "subscription { paymentConfirmation(actingCustomer: 1, orderId: 2) { status } }",
        "subscription { a: orderStatusChanged { status } b: orderStatusChanged { status } }",
        "subscription { orderStatusChanged { nope } }",  # invalid
        "subscription { orderStatusChanged { status }",  # does not parse
        "query { viewer { id } }",
        "subscription A { orderStatusChanged { status } } subscription B { orderStatusChanged { status } }",
        # valid, but longer than the document cache keeps: parsed once, by Strawberry's path
        "subscription { orderStatusChanged { status } }" + " " * 5000,
    ]
    assert [live_document(documents, query, None) for query in refused] == [None] * len(refused)


async def test_live_path_sends_what_strawberrys_loop_sends(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]

    async with gateway.websocket(owner) as ws:
        earliest = await ws.subscribe(CHANGES, {"c": customer})
        await asyncio.sleep(0.1)
        first = await _buy(gateway, owner, customer, product)
        seen = [(await ws.next_data(earliest))["orderStatusChanged"] for _ in range(3)]
        cursor = seen[0]["cursor"]
        live = await ws.subscribe(CHANGES, {"c": customer})
        reference = await ws.subscribe(CHANGES_BY_STRAWBERRY, {"c": customer})
        # The stored events after the first order's PENDING, then live ones.
        resumed = await ws.subscribe(CHANGES, {"c": customer, "after": cursor})
        await asyncio.sleep(0.1)
        second = await _buy(gateway, owner, customer, product)
        messages = [await ws.receive() for _ in range(3 + 3 + 3 + 5)]

    by_operation: dict[str, list[dict[str, Any]]] = {earliest: [], live: [], reference: [], resumed: []}
    for message in messages:
        assert message["type"] == "next" and set(message) == {"id", "type", "payload"}, message
        by_operation[message["id"]].append(message["payload"])
    assert by_operation[live] == by_operation[reference] == by_operation[earliest]
    assert [p["data"]["orderStatusChanged"]["status"] for p in by_operation[live]] == [
        "PENDING",
        "PROCESSING",
        "SUCCEEDED",
    ]
    assert {p["data"]["orderStatusChanged"]["order"]["id"] for p in by_operation[live]} == {second}
    replayed = [p["data"]["orderStatusChanged"]["order"]["id"] for p in by_operation[resumed]]
    assert replayed == [first, first, second, second, second]
    assert by_operation[resumed][2:] == by_operation[live]


async def test_each_event_is_encoded_once_per_distinct_subscription(
    gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    encoded: list[object] = []
    real = subscriptions.live.next_payload

    def counting(result: Any) -> dict[str, object]:
        encoded.append(result)
        return real(result)

    monkeypatch.setattr(subscriptions.live, "next_payload", counting)
    async with gateway.websocket(owner) as one, gateway.websocket(owner) as two:
        same = [await one.subscribe(CHANGES, {"c": customer}), await two.subscribe(CHANGES, {"c": customer})]
        other = await two.subscribe(CHANGES_WITH_TOTAL, {"c": customer})
        await asyncio.sleep(0.1)
        assert distinct_live_subscriptions() == 2
        await _buy(gateway, owner, customer, product)
        first = [(await one.next_data(same[0]))["orderStatusChanged"] for _ in range(3)]
        received = [await two.receive() for _ in range(6)]

    # Three events, two distinct subscriptions: six payloads made, for nine sent.
    assert len(encoded) == 6
    assert [m["payload"]["data"]["orderStatusChanged"] for m in received if m["id"] == same[1]] == first
    totals = [m["payload"]["data"]["orderStatusChanged"] for m in received if m["id"] == other]
    assert [t["status"] for t in totals] == ["PENDING", "PROCESSING", "SUCCEEDED"]
    assert all(t["order"]["total"]["amount"] for t in totals)


async def test_nothing_is_kept_once_the_subscribers_leave(gateway: GatewayServer) -> None:
    tenant, customer, _ = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer})
        await ws.subscribe(CHANGES, {"c": customer})
        await asyncio.sleep(0.1)
        assert distinct_live_subscriptions() == 1
        assert gateway.runtime.hub.subscriber_count == 2
        await ws.conn.send(json.dumps({"type": "complete", "id": op}))
        await asyncio.sleep(0.1)
        assert gateway.runtime.hub.subscriber_count == 1
        assert distinct_live_subscriptions() == 1
    for _ in range(50):
        if gateway.runtime.hub.subscriber_count == 0 and distinct_live_subscriptions() == 0:
            break
        await asyncio.sleep(0.05)
    assert gateway.runtime.hub.subscriber_count == 0
    assert distinct_live_subscriptions() == 0


async def test_subscribers_vanishing_during_a_fan_out_leave_no_error(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sockets dropped while their events are being sent: every subscription
    ends with its socket, the shared executor is given back, nothing is logged."""
    caplog.set_level(logging.ERROR)
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(gateway.websocket(owner)) for _ in range(20)]
        for ws in sockets:
            await ws.subscribe(CHANGES, {"c": customer})
        await asyncio.sleep(0.1)
        assert gateway.runtime.hub.subscriber_count == 20
        buying = asyncio.ensure_future(_buy(gateway, owner, customer, product))
        for ws in sockets:
            ws.conn.transport.abort()
        await buying
        for _ in range(100):
            if gateway.runtime.hub.subscriber_count == 0:
                break
            await asyncio.sleep(0.05)
        assert gateway.runtime.hub.subscriber_count == 0
        assert distinct_live_subscriptions() == 0
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_live_frame_for_a_socket_already_gone_is_dropped_not_raised() -> None:
    """Starlette raises its WebSocketDisconnect for a frame sent after the
    client left; raised out of the live operation it was logged as an error."""

    async def send_to_gone_client() -> None:
        raise WebSocketDisconnect(code=1006)

    await _unless_closed(send_to_gone_client())

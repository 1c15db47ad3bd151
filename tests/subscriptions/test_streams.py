"""Subscriptions over real WebSocket connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from gateway.sockets import TransportWSHandler, close_reason
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLWebSocket, serve_gateway

ADD_CARD = """
mutation($c: ID!, $token: String!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: $token}) { paymentMethod { id } userErrors { code } }
}"""
PRODUCTS = "query($c: ID!) { products(actingCustomer: $c) { id totalLicenses } }"
BUY = """
mutation($c: ID!, $p: ID!, $n: Int!) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: $n}) { order { id status } userErrors { code } }
}"""
CONFIRMATION = """
subscription($c: ID!, $o: ID!) {
  paymentConfirmation(actingCustomer: $c, orderId: $o) { status cursor order { id status total { amount } } }
}"""
CHANGES = """
subscription($c: ID, $after: String) {
  orderStatusChanged(actingCustomer: $c, after: $after) { status cursor order { id } }
}"""


async def _customer_with_card(
    gateway: GatewayServer, index: int = 0, token: str = "pm_card_visa"
) -> tuple[Any, str, str]:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    customer = tenant.customers[index].id
    added = await client.data(ADD_CARD, {"c": customer, "token": token})
    assert added["addPaymentMethod"]["userErrors"] == []
    product = (await client.data(PRODUCTS, {"c": customer}))["products"][0]["id"]
    return tenant, customer, product


async def _buy(gateway: GatewayServer, token: str, customer: str, product: str, n: int = 1) -> str:
    data = await gateway.client(token).data(BUY, {"c": customer, "p": product, "n": n})
    assert data["buyLicenses"]["userErrors"] == []
    order_id: str = data["buyLicenses"]["order"]["id"]
    return order_id


async def _collect(ws: GraphQLWebSocket, op_id: str, count: int) -> list[dict[str, Any]]:
    return [(await ws.next_data(op_id))["orderStatusChanged"] for _ in range(count)]


async def test_payment_confirmation_sends_current_status_then_completes(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    gateway.runtime.services.provider._delay = 0.5  # type: ignore[attr-defined]
    order_id = await _buy(gateway, owner, customer, product, 2)

    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CONFIRMATION, {"c": customer, "o": order_id})
        first = (await ws.next_data(op))["paymentConfirmation"]
        second = (await ws.next_data(op))["paymentConfirmation"]
        done = await ws.receive()

    assert first["status"] == "PROCESSING" and first["order"]["id"] == order_id
    assert second["status"] == "SUCCEEDED" and second["order"]["status"] == "SUCCEEDED"
    assert done == {"id": op, "type": "complete"}
    products = await gateway.client(owner).data(PRODUCTS, {"c": customer})
    assert products["products"][0]["totalLicenses"] == 12


async def test_payment_confirmation_of_a_settled_order_is_one_message(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway, token="pm_card_chargeCustomerFail")
    owner = tenant.tokens["PARTNER_OWNER"]
    data = await gateway.client(owner).data(BUY, {"c": customer, "p": product, "n": 1})
    order_id = data["buyLicenses"]["order"]["id"]
    assert data["buyLicenses"]["order"]["status"] == "FAILED"

    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CONFIRMATION, {"c": customer, "o": order_id})
        only = (await ws.next_data(op))["paymentConfirmation"]
        assert await ws.receive() == {"id": op, "type": "complete"}
    assert only["status"] == "FAILED"


async def test_order_status_changed_streams_live_events_of_own_partner_only(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    other, other_customer, other_product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]

    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CHANGES, {})
        await asyncio.sleep(0.1)  # let the subscription register before buying
        await _buy(gateway, other.tokens["PARTNER_OWNER"], other_customer, other_product)
        order_id = await _buy(gateway, owner, customer, product)
        events = await _collect(ws, op, 3)
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.5)

    assert [e["status"] for e in events] == ["PENDING", "PROCESSING", "SUCCEEDED"]
    assert {e["order"]["id"] for e in events} == {order_id}
    cursors = [e["cursor"] for e in events]
    assert len(set(cursors)) == 3


async def test_resuming_after_a_cursor_misses_nothing_and_repeats_nothing(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]

    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer})
        await asyncio.sleep(0.1)
        first_order = await _buy(gateway, owner, customer, product)
        seen = await _collect(ws, op, 3)
    # Disconnected: two more orders settle meanwhile.
    missed_orders = [await _buy(gateway, owner, customer, product) for _ in range(2)]
    await asyncio.sleep(0.3)

    async with gateway.websocket(owner) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer, "after": seen[0]["cursor"]})
        replayed = await _collect(ws, op, 2 + 3 * 2)
        live_order = await _buy(gateway, owner, customer, product)
        live = await _collect(ws, op, 3)
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.5)

    assert [(e["order"]["id"], e["status"]) for e in replayed[:2]] == [
        (first_order, "PROCESSING"),
        (first_order, "SUCCEEDED"),
    ]
    replayed_orders = [e["order"]["id"] for e in replayed[2:]]
    assert sorted(set(replayed_orders)) == sorted(missed_orders)
    for order_id in missed_orders:
        statuses = [e["status"] for e in replayed[2:] if e["order"]["id"] == order_id]
        assert statuses == ["PENDING", "PROCESSING", "SUCCEEDED"]
    assert [e["order"]["id"] for e in live] == [live_order] * 3
    resumed_cursors = [e["cursor"] for e in replayed + live]
    assert len(resumed_cursors) == len(set(resumed_cursors))
    assert seen[0]["cursor"] not in resumed_cursors
    # The same event has the same cursor for every subscriber.
    assert [e["cursor"] for e in seen[1:]] == resumed_cursors[:2]


async def test_a_slow_subscriber_catches_up_from_stored_events(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, subscriber_queue_size=2)) as gateway:
        tenant, customer, product = await _customer_with_card(gateway)
        owner = tenant.tokens["PARTNER_OWNER"]
        async with gateway.websocket(owner) as ws:
            op = await ws.subscribe(CHANGES, {"c": customer})
            await asyncio.sleep(0.1)
            orders = [await _buy(gateway, owner, customer, product) for _ in range(5)]
            await asyncio.sleep(0.5)
            events = await _collect(ws, op, 15)
        per_order = {o: [e["status"] for e in events if e["order"]["id"] == o] for o in orders}
        assert per_order == {o: ["PENDING", "PROCESSING", "SUCCEEDED"] for o in orders}


@pytest.mark.parametrize("token", [None, "pbg_" + "x" * 43, "not-a-token"])
async def test_a_missing_or_bad_token_closes_the_socket_with_4401(gateway: GatewayServer, token: str | None) -> None:
    """4401, which graphql-ws clients take as final (4403 they retry for ~40 s)."""
    async with gateway.websocket(None, init=False) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.conn.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_refusals_arrive_as_error_messages_with_codes(gateway: GatewayServer) -> None:
    tenant, customer, _ = await _customer_with_card(gateway)
    other = await gateway.tenant()
    async with gateway.websocket(tenant.tokens["PARTNER_ADMIN"]) as ws:
        op = await ws.subscribe(CHANGES, {"c": customer})
        forbidden = await ws.receive()
    async with gateway.websocket(tenant.tokens["PARTNER_OWNER"]) as ws:
        op2 = await ws.subscribe(CHANGES, {"c": other.customers[0].id})
        not_found = await ws.receive()
        op3 = await ws.subscribe(CHANGES, {"c": customer, "after": "garbage"})
        bad_cursor = await ws.receive()
        op4 = await ws.subscribe(CONFIRMATION, {"c": customer, "o": "ord_doesnotexist"})
        no_order = await ws.receive()

    assert forbidden["id"] == op and forbidden["type"] == "error"
    assert forbidden["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    assert not_found["id"] == op2 and not_found["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    assert bad_cursor["id"] == op3 and bad_cursor["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert no_order["id"] == op4 and no_order["payload"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_token_on_the_upgrade_request_is_accepted(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    headers = {"Authorization": f"Bearer {tenant.tokens['PARTNER_OWNER']}"}
    async with websockets.connect(
        f"ws://127.0.0.1:{gateway.port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers=headers,
    ) as conn:
        await conn.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(conn.recv(), 5))["type"] == "connection_ack"


@contextlib.asynccontextmanager
async def _legacy_socket(gateway: GatewayServer, token: str | None) -> AsyncIterator[ClientConnection]:
    """A graphql-ws (the older protocol) connection, acknowledged when ``token`` is given."""
    async with websockets.connect(
        f"ws://127.0.0.1:{gateway.port}/graphql",
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
    ) as conn:
        if token is not None:
            await conn.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            assert json.loads(await asyncio.wait_for(conn.recv(), 5))["type"] == "connection_ack"
        yield conn


async def test_legacy_graphql_ws_protocol(gateway: GatewayServer) -> None:
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    order_id = await _buy(gateway, owner, customer, product)
    async with _legacy_socket(gateway, owner) as conn:
        payload = {"query": CONFIRMATION, "variables": {"c": customer, "o": order_id}}
        await conn.send(json.dumps({"id": "1", "type": "start", "payload": payload}))
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["type"] != "complete":
            message = json.loads(await asyncio.wait_for(conn.recv(), 5))
            if message["type"] != "ka":
                messages.append(message)
    statuses = [m["payload"]["data"]["paymentConfirmation"]["status"] for m in messages if m["type"] == "data"]
    assert statuses[-1] == "SUCCEEDED"
    assert set(statuses) <= {"PROCESSING", "SUCCEEDED"}


# -- malformed messages (found by tests/fuzz) ----------------------------------------

MALFORMED = (
    "[1]",
    '"connection_init"',
    '{"id": ["1"], "type": "complete"}',
    '{"id": 1, "type": "subscribe", "payload": {"query": "subscription { orderStatusChanged { cursor } }"}}',
    '{"id": "1", "type": "subscribe", "payload": []}',
    '{"id": "1", "type": "subscribe", "payload": {"query": 5}}',
    '{"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { id } }", "variables": [1]}}',
    '{"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { id } }", "operationName": 5}}',
    # Strawberry's close reason quotes the type: over a close frame's 123 bytes,
    '{"type": ' + "[" * 60 + "]" * 60 + "}",
    # and not UTF-8 at all.
    '{"type": "\\ud800"}',
)


async def test_malformed_messages_close_the_socket_with_4400(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each raised out of Strawberry's loop (it catches KeyError only), or
    made the close itself fail: the socket dropped with no close frame (1006)
    and the server logged an error."""
    tenant = await gateway.tenant()
    caplog.set_level(logging.ERROR)
    for message in MALFORMED:
        async with gateway.websocket(tenant.tokens["PARTNER_OWNER"]) as ws:
            await ws.conn.send(message)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400, (message, closed.value)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_duplicate_long_id_closes_with_4409_and_a_reason_that_fits(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    async with gateway.websocket(tenant.tokens["PARTNER_OWNER"]) as ws:
        for _ in range(2):
            message = {"id": "é" * 200, "type": "subscribe", "payload": {"query": CHANGES}}
            await ws.conn.send(json.dumps(message))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
    assert len(closed.value.rcvd.reason.encode()) <= 123


async def test_a_client_leaving_before_its_token_is_refused_leaves_no_error(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The 4401 close came after the client had gone (the token is looked up
    first): closing raised, and uvicorn logged "Exception in ASGI application"."""
    caplog.set_level(logging.ERROR)
    init = json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer pbg_" + "A" * 43}})
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        for _ in range(10):
            async with websockets.connect(
                f"ws://127.0.0.1:{gateway.port}/graphql",
                subprotocols=[protocol],  # type: ignore[list-item]
            ) as conn:
                await conn.send(init)
    await asyncio.sleep(0.5)  # the server's side of the last ones
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_close_reasons_fit_a_close_frame() -> None:
    assert close_reason("Subscriber for 1 already exists") == "Subscriber for 1 already exists"
    cut = close_reason("Unknown message type: " + "é" * 100)
    assert len(cut.encode()) <= 123 and cut.endswith("...")
    assert close_reason("Unknown message type: \ud800") == "Unknown message type: ?"


async def test_a_message_for_a_closed_socket_is_dropped_not_raised() -> None:
    """uvicorn raises RuntimeError on a send after it closed the socket itself
    (1009): an operation answering then made Strawberry log an error."""

    class Closed:
        async def send_json(self, message: object) -> None:
            raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.")

    handler = TransportWSHandler(
        view=None,  # type: ignore[arg-type]
        websocket=Closed(),  # type: ignore[arg-type]
        context=None,  # type: ignore[arg-type]
        root_value=None,
        schema=None,  # type: ignore[arg-type]
        connection_init_wait_timeout=timedelta(seconds=1),
    )
    await handler.send_message({"id": "1", "type": "complete"})


async def test_operations_that_cannot_run_are_bad_user_input_not_internal(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No query, or an operation name the document does not have: Strawberry
    refuses them before running, and they were INTERNAL, logged as unexpected."""
    tenant = await gateway.tenant()
    caplog.set_level(logging.ERROR)
    async with gateway.websocket(tenant.tokens["PARTNER_OWNER"]) as ws:
        for op_id, payload in (("1", {"query": ""}), ("2", {"query": CHANGES, "operationName": "Nope"})):
            await ws.conn.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
            refused = await ws.receive()
            assert refused["id"] == op_id and refused["type"] == "error", refused
            assert refused["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT", refused
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_documents_that_do_not_parse_are_answered_over_both_protocols(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The parse error escaped Strawberry's parse step: graphql-transport-ws
    answered a bare complete, graphql-ws nothing at all, and the server
    logged the operation task's exception."""
    tenant = await gateway.tenant()
    owner = tenant.tokens["PARTNER_OWNER"]
    caplog.set_level(logging.ERROR)
    too_many_tokens = "subscription { " + "a: __typename " * 700 + "}"
    cases = (
        ("1", "subscription { orderStatusChanged { cursor }", "BAD_USER_INPUT"),
        ("2", too_many_tokens, "QUERY_TOO_COMPLEX"),
    )
    async with gateway.websocket(owner) as ws:
        for op_id, query, code in cases:
            await ws.conn.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))
            refused = await ws.receive()
            assert refused["id"] == op_id and refused["type"] == "error", refused
            assert refused["payload"][0]["extensions"]["code"] == code, refused
    async with _legacy_socket(gateway, owner) as conn:
        for op_id, query, code in cases:
            await conn.send(json.dumps({"id": op_id, "type": "start", "payload": {"query": query}}))
            refused = json.loads(await asyncio.wait_for(conn.recv(), 5))
            assert refused["id"] == op_id and refused["type"] == "error", refused
            assert refused["payload"]["extensions"]["code"] == code, refused
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_legacy_protocol_ignores_malformed_messages_and_refuses_queries_cleanly(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """graphql-ws: a malformed message is ignored like non-JSON text (it
    dropped the socket); a query, which this protocol does not run, is a
    BAD_USER_INPUT error (it was INTERNAL, logged as unexpected)."""
    tenant, customer, product = await _customer_with_card(gateway)
    owner = tenant.tokens["PARTNER_OWNER"]
    order_id = await _buy(gateway, owner, customer, product)
    caplog.set_level(logging.ERROR)
    async with _legacy_socket(gateway, owner) as conn:
        for malformed in ("[1]", "{}", '{"id": ["1"], "type": "stop"}', '{"id": "1", "type": "start", "payload": []}'):
            await conn.send(malformed)
        await conn.send(json.dumps({"id": "q", "type": "start", "payload": {"query": "{ viewer { id } }"}}))
        refused = json.loads(await asyncio.wait_for(conn.recv(), 5))
        payload = {"query": CONFIRMATION, "variables": {"c": customer, "o": order_id}}
        await conn.send(json.dumps({"id": "s", "type": "start", "payload": payload}))
        answered = json.loads(await asyncio.wait_for(conn.recv(), 5))
    assert refused["id"] == "q" and refused["type"] == "error", refused
    assert refused["payload"]["extensions"]["code"] == "BAD_USER_INPUT", refused
    assert answered["id"] == "s" and answered["type"] == "data", answered
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_legacy_init_payload_that_is_no_object_is_a_coded_connection_error(gateway: GatewayServer) -> None:
    async with _legacy_socket(gateway, None) as conn:
        await conn.send(json.dumps({"type": "connection_init", "payload": [1]}))
        error = json.loads(await asyncio.wait_for(conn.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 5)
    assert error["type"] == "connection_error"
    assert error["payload"]["extensions"]["code"] == "BAD_USER_INPUT", error
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

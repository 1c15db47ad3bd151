"""Bad input is an answer, never a traceback, on SQLite and on PostgreSQL
(which refuses NUL in text: nothing hostile may reach its driver). NUL bytes
and lone surrogates in ids, keys and cursors, integers inside cursors, a
cursor of 2**70: each gets the contract's answer (NOT_FOUND for ids,
BAD_USER_INPUT for malformed cursors and keys, user errors inside mutations),
and the server logs no error."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.conftest import sqlite_settings
from tests.scale.conftest import pg_settings
from tests.support.gateway import GatewayServer, serve_gateway

HOSTILE = ["x\u0000y", "\u0000", "\ud800", "cst_\udfff", "x" * 100, "2" * 30, "' OR 1=1 --"]


def _plain(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


HOSTILE_CURSORS = [
    *HOSTILE,
    _plain("evt", 2**70),
    _plain("ord", 2**70, "ord_x"),
    _plain("ord", "2025-01-01T00:00:00+00:00", 7),
    _plain("cst", 1, 2),
    _plain("cst", "a\u0000b", "cst_x"),
    _plain("aud", 2**70),
    base64.urlsafe_b64encode(b"\x00\x00").decode(),
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GatewayServer]:
    if request.param == "sqlite":
        settings = sqlite_settings(tmp_path)
    else:
        settings = pg_settings(request.getfixturevalue("fresh_pg_url"))
    async with serve_gateway(settings) as server:
        yield server


async def _post(gateway: GatewayServer, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST with the variables as escaped JSON, so lone surrogates arrive as such."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    response = await gateway.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert "Traceback" not in response.text
    result: dict[str, Any] = response.json()
    return result


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


def _user_codes(body: dict[str, Any], field: str) -> list[str]:
    assert not body.get("errors"), body
    return [e["code"] for e in body["data"][field]["userErrors"]]


Q_PRODUCTS = "query($c: ID!) { products(actingCustomer: $c) { id } }"
Q_BILLING = "query($c: ID!) { billingDetails(actingCustomer: $c) { customer { id } } }"
Q_ORDER = "query($c: ID!, $id: ID!) { order(actingCustomer: $c, id: $id) { id } }"
Q_ORDERS = "query($c: ID!, $a: String) { orders(actingCustomer: $c, after: $a) { edges { cursor } } }"
Q_CUSTOMERS = "query($a: String) { customers(after: $a) { edges { cursor } } }"
Q_AUDIT = "query($c: ID, $a: String) { auditLog(actingCustomer: $c, after: $a) { edges { cursor } } }"
Q_SUMMARY = """
query($c: ID!, $p: ID!) {
  licensePurchaseSummary(actingCustomer: $c, input: {productId: $p, quantity: 1}) { lines { quantity } }
}"""
M_ADD = """
mutation($c: ID!, $t: String!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: $t}) { userErrors { code } }
}"""
M_PRIMARY = """
mutation($c: ID!, $pm: ID!) {
  setPrimaryPaymentMethod(actingCustomer: $c, paymentMethodId: $pm) { userErrors { code } }
}"""
M_BUY = """
mutation($c: ID!, $p: ID!, $pm: ID, $k: String) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: 1, paymentMethodId: $pm, idempotencyKey: $k}) {
    userErrors { code }
  }
}"""
M_STORAGE = """
mutation($c: ID!, $plan: ID!) {
  upgradeStorage(actingCustomer: $c, input: {planId: $plan, licenses: 1, billingInterval: MONTHLY}) {
    userErrors { code }
  }
}"""
S_CHANGES = "subscription($c: ID, $a: String) { orderStatusChanged(actingCustomer: $c, after: $a) { cursor } }"
S_CONFIRMATION = "subscription($c: ID!, $o: ID!) { paymentConfirmation(actingCustomer: $c, orderId: $o) { status } }"


async def test_hostile_ids_keys_and_cursors_get_the_contracts_answers(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    tenant = await gateway.tenant()
    owner, admin = tenant.tokens["PARTNER_OWNER"], tenant.tokens["PARTNER_ADMIN"]
    customer = tenant.customers[0].id
    card = await _post(gateway, owner, M_ADD, {"c": customer, "t": "pm_card_visa"})
    assert _user_codes(card, "addPaymentMethod") == []
    product = (await _post(gateway, owner, Q_PRODUCTS, {"c": customer}))["data"]["products"][0]["id"]

    for value in HOSTILE:
        # An id naming nothing the caller may see: NOT_FOUND ...
        for query, variables in (
            (Q_PRODUCTS, {"c": value}),
            (Q_BILLING, {"c": value}),
            (Q_ORDER, {"c": value, "id": "ord_x"}),
            (Q_ORDER, {"c": customer, "id": value}),
            (Q_ORDERS, {"c": value}),
            (Q_SUMMARY, {"c": value, "p": product}),
            (M_ADD, {"c": value, "t": "pm_card_visa"}),
            (M_BUY, {"c": value, "p": product}),
            (M_STORAGE, {"c": value, "plan": "plan_storage_1tb"}),
            (Q_AUDIT, {"c": value}),
        ):
            assert _code(await _post(gateway, owner, query, variables)) == "NOT_FOUND", (query, value)
        # ... but a Partner Admin is refused for the role before any id is looked at.
        for query, variables in ((Q_BILLING, {"c": value}), (M_BUY, {"c": value, "p": product})):
            assert _code(await _post(gateway, admin, query, variables)) == "FORBIDDEN", (query, value)
        # Ids inside a mutation's input: user errors.
        assert _user_codes(await _post(gateway, owner, M_BUY, {"c": customer, "p": value}), "buyLicenses") == [
            "PRODUCT_NOT_FOUND"
        ]
        assert _user_codes(
            await _post(gateway, owner, M_BUY, {"c": customer, "p": product, "pm": value}), "buyLicenses"
        ) == ["PAYMENT_METHOD_NOT_FOUND"]
        assert _user_codes(
            await _post(gateway, owner, M_PRIMARY, {"c": customer, "pm": value}), "setPrimaryPaymentMethod"
        ) == ["PAYMENT_METHOD_NOT_FOUND"]
        assert _user_codes(
            await _post(gateway, owner, M_STORAGE, {"c": customer, "plan": value}), "upgradeStorage"
        ) == ["PLAN_NOT_FOUND"]
        assert _user_codes(await _post(gateway, owner, M_ADD, {"c": customer, "t": value}), "addPaymentMethod") == [
            "INVALID_PAYMENT_METHOD_TOKEN"
        ]

    for key in ("k\u0000", "\ud800", "\u0000", "k" * 300):
        body = await _post(gateway, owner, M_BUY, {"c": customer, "p": product, "k": key})
        assert _code(body) == "BAD_USER_INPUT", key

    for cursor in HOSTILE_CURSORS:
        for query, variables in (
            (Q_ORDERS, {"c": customer, "a": cursor}),
            (Q_CUSTOMERS, {"a": cursor}),
            (Q_AUDIT, {"a": cursor}),
        ):
            assert _code(await _post(gateway, owner, query, variables)) == "BAD_USER_INPUT", (query, cursor)

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_hostile_values_over_websocket(gateway: GatewayServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    tenant = await gateway.tenant()
    customer = tenant.customers[0].id
    cases: list[tuple[str, dict[str, Any], str]] = [
        *((S_CHANGES, {"c": value}, "NOT_FOUND") for value in HOSTILE),
        *((S_CONFIRMATION, {"c": value, "o": "ord_x"}, "NOT_FOUND") for value in HOSTILE),
        *((S_CONFIRMATION, {"c": customer, "o": value}, "NOT_FOUND") for value in HOSTILE),
        *((S_CHANGES, {"a": cursor}, "BAD_USER_INPUT") for cursor in HOSTILE_CURSORS),
    ]
    async with websockets.connect(
        f"ws://127.0.0.1:{gateway.port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as conn:
        token = tenant.tokens["PARTNER_OWNER"]
        await conn.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await conn.recv())["type"] == "connection_ack"
        for n, (query, variables, expected) in enumerate(cases):
            # json.dumps escapes lone surrogates, so they arrive as such.
            await conn.send(
                json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": query, "variables": variables}})
            )
            message = json.loads(await conn.recv())
            assert message["id"] == str(n) and message["type"] == "error", (variables, message)
            assert message["payload"][0]["extensions"]["code"] == expected, (variables, message)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]

"""GraphiQL in headless Chromium, with every request to anything but the
gateway blocked: it renders, loads the schema, runs the example operations
(a subscription over WebSocket included) and keeps no token in storage."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

import gateway.app
from gateway.graphiql import GraphiQLPage
from gateway.graphiql.assets import ASSETS, STATIC_DIR
from tests.conftest import sqlite_settings
from tests.support.browser import require_browser, require_graphiql_assets, run_scenario
from tests.support.gateway import GatewayServer, serve_gateway

VIEWER_AND_PRODUCTS = "query($c: ID!) { viewer { email } products(actingCustomer: $c) { id } }"


@pytest.fixture(autouse=True)
def browser_ready() -> None:
    require_browser()
    require_graphiql_assets()


def stored_values(storage: dict[str, list[list[str]]]) -> list[str]:
    """Every key and value of localStorage and sessionStorage, as dumped by the scenario."""
    return [text for area in storage.values() for pair in area for text in pair]


async def test_graphiql_works_offline_and_keeps_no_token(gateway: GatewayServer, tmp_path: Path) -> None:
    tenant = await gateway.tenant()
    token, customer = tenant.tokens["PARTNER_OWNER"], tenant.customers[0]
    known = await gateway.client(token).data(VIEWER_AND_PRODUCTS, {"c": customer.id})
    email, product_id = known["viewer"]["email"], known["products"][0]["id"]

    report = await run_scenario(
        "graphiql.mjs",
        {
            "url": f"{gateway.url}/graphql",
            "allowedOrigins": [gateway.url],
            "token": token,
            "email": email,
            "customerId": customer.id,
            "productId": product_id,
            "screenshotPath": str(tmp_path / "graphiql.png"),
        },
    )
    result = report.passed()  # also: no request or socket beyond the gateway, no console error

    assert "mutation BuyLicenses" in result["examples"]
    assert "subscription PaymentConfirmation" in result["examples"]
    assert "subscription: Subscription" in result["docs"]  # the Docs pane has the schema
    assert result["viewer"]["data"]["viewer"]["email"] == email
    assert result["card"]["data"]["addPaymentMethod"]["paymentMethod"]["isPrimary"] is True
    order = result["purchase"]["data"]["buyLicenses"]["order"]
    assert result["confirmation"]["data"]["paymentConfirmation"]["status"] == "SUCCEEDED"
    assert result["sockets"] == [f"ws://127.0.0.1:{gateway.port}/graphql"]
    # The gateway saw the purchase the page made.
    orders = await gateway.client(token).data(
        "query($c: ID!) { orders(actingCustomer: $c, first: 5) { edges { node { id status } } } }", {"c": customer.id}
    )
    assert {"id": order["id"], "status": "SUCCEEDED"} in [e["node"] for e in orders["orders"]["edges"]]

    # GraphiQL did store its history (with the order's variables), but never the token.
    after_queries = stored_values(result["afterQueries"])
    assert any(order["id"] in text for text in after_queries), after_queries
    assert not [text for text in after_queries if token in text]
    assert not [text for text in stored_values(result["afterReload"]["storage"]) if token in text]
    assert token not in result["afterReload"]["headers"]


async def test_a_file_that_fails_to_load_is_reported_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static)
    graphiql_js = static / ASSETS[2].served_path
    graphiql_js.write_bytes(graphiql_js.read_bytes() + b"\n// changed after install")
    monkeypatch.setattr(gateway.app, "GraphiQLPage", functools.partial(GraphiQLPage, static_dir=static))

    async with serve_gateway(sqlite_settings(tmp_path)) as server:
        report = await run_scenario(
            "graphiql-broken.mjs",
            {
                "url": f"{server.url}/graphql",
                "allowedOrigins": [server.url],
                "screenshotPath": str(tmp_path / "broken.png"),
            },
        )
    result = report.passed()
    assert "graphiql.min.js" in result["alert"] and "scripts/setup" in result["alert"]
    assert result["loadingLeft"] == 0
    assert any("integrity" in error for error in result["consoleErrors"]), result["consoleErrors"]

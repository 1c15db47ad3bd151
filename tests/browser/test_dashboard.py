"""The example dashboard (examples/dashboard) in headless Chromium, on its own
origin, against a real gateway that allows that origin: what a partner's
staff see on screen is what the gateway did.

Set ``DASHBOARD_SCREENSHOTS`` to a folder to save the README's screenshots
there (``scripts/dashboard-screenshots`` does, into docs/images)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sqlite_settings
from tests.support.browser import require_browser, run_scenario
from tests.support.dashboard import build_dashboard, require_dashboard_packages, serve_static
from tests.support.gateway import serve_gateway

PRODUCTS = """query($c: ID!) {
  products(actingCustomer: $c) {
    id plan { id } billingInterval totalLicenses availableLicenses storageGb currentPeriodEnd renewsAt
  }
}"""
SUMMARY = """query($c: ID!, $p: ID!, $q: Int!) {
  licensePurchaseSummary(actingCustomer: $c, input: {productId: $p, quantity: $q}) { total { amount currency } }
}"""
STORAGE_SUMMARY = """query($c: ID!, $p: ID!) {
  storageUpgradeSummary(actingCustomer: $c, input: {planId: $p, licenses: 2, billingInterval: YEARLY}) {
    total { amount currency }
  }
}"""
ORDERS = "query($c: ID!) { orders(actingCustomer: $c, first: 50) { edges { node { id } } } }"
SCHEDULE = """mutation($c: ID!, $p: ID!, $n: Int!) {
  scheduleLicenseChange(actingCustomer: $c, input: {productId: $p, totalLicenses: $n}) { userErrors { code } }
}"""
SCHEDULED_LICENSES = 9
STORAGE_PLAN = "plan_storage_250gb"
ORDER = "query($c: ID!, $o: ID!) { order(actingCustomer: $c, id: $o) { status total { amount currency } } }"
# Long enough to see an order in flight on screen and to buy while the page's
# socket is down; short enough to keep the test quick.
CONFIRM_DELAY_MS = 1500


@pytest.fixture(scope="module")
def dashboard_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_browser()
    require_dashboard_packages()
    return build_dashboard(tmp_path_factory.mktemp("dashboard") / "dist")


@pytest.fixture
def dashboard_origin(dashboard_dist: Path) -> Iterator[str]:
    with serve_static(dashboard_dist) as origin:
        yield origin


@pytest.fixture
def screenshots() -> dict[str, str]:
    """The scenario's ``screenshotDir`` when ``DASHBOARD_SCREENSHOTS`` names one."""
    folder = os.environ.get("DASHBOARD_SCREENSHOTS")
    return {"screenshotDir": str(Path(folder).resolve())} if folder else {}


def money(value: dict[str, Any]) -> str:
    """As the dashboard shows it: "10.00 USD"."""
    return f"{value['amount']} {value['currency']}"


async def test_a_partner_buys_watches_live_and_sees_declines(
    dashboard_origin: str, screenshots: dict[str, str], tmp_path: Path
) -> None:
    settings = sqlite_settings(tmp_path, allowed_origins=(dashboard_origin,), sandbox_confirm_delay_ms=CONFIRM_DELAY_MS)
    async with serve_gateway(settings) as gateway:
        tenant = await gateway.tenant()
        owner = gateway.client(tenant.tokens["PARTNER_OWNER"])
        customer = tenant.customers[0]
        product = (await owner.data(PRODUCTS, {"c": customer.id}))["products"][0]
        # Fewer licenses from the next period: the products table shows the change.
        scheduled = await owner.data(SCHEDULE, {"c": customer.id, "p": product["id"], "n": SCHEDULED_LICENSES})
        assert scheduled["scheduleLicenseChange"]["userErrors"] == []
        quote = await owner.data(SUMMARY, {"c": customer.id, "p": product["id"], "q": 2})
        storage_quote = await owner.data(STORAGE_SUMMARY, {"c": customer.id, "p": STORAGE_PLAN})

        report = await run_scenario(
            "dashboard.mjs",
            {
                "url": dashboard_origin,
                "gatewayUrl": gateway.url,
                "allowedOrigins": [dashboard_origin, gateway.url],
                "tokens": {"owner": tenant.tokens["PARTNER_OWNER"], "admin": tenant.tokens["PARTNER_ADMIN"]},
                "customerId": customer.id,
                "customerName": customer.name,
                "storagePlanId": STORAGE_PLAN,
                "screenshotPath": str(tmp_path / "dashboard.png"),
                **screenshots,
            },
        )
        result = report.passed()  # also: no request beyond the two origins, no console error

        async def order(order_id: str) -> dict[str, Any]:
            found: dict[str, Any] = (await owner.data(ORDER, {"c": customer.id, "o": order_id}))["order"]
            return found

        first, declined, secure, resumed, storage, retried = [
            await order(result[name]["orderId"])
            for name in ("purchase", "declined", "secure", "resumed", "storage", "lostAnswer")
        ]
        products = {p["plan"]["id"]: p for p in (await owner.data(PRODUCTS, {"c": customer.id}))["products"]}
        orders = (await owner.data(ORDERS, {"c": customer.id}))["orders"]["edges"]

    # A bad token and a partner admin are told why, on screen.
    assert result["badToken"]["code"] == "UNAUTHENTICATED"
    assert "Token rejected" in result["badToken"]["text"]
    assert result["admin"]["products"] == 1
    assert result["admin"]["code"] == "FORBIDDEN" and "PARTNER_ADMIN" in result["admin"]["text"]
    assert result["admin"]["buyPanels"] == 0

    # The summary shown is what the API quotes, and what the order then charged.
    purchase = result["purchase"]
    assert purchase["total"] == money(quote["licensePurchaseSummary"]["total"]) == money(first["total"])
    # Seen in flight, then SUCCEEDED through the live socket, and the licenses went up on screen.
    assert purchase["firstSeen"] in {"PENDING", "PROCESSING"}
    assert purchase["trail"].endswith("Succeeded"), purchase["trail"]
    assert purchase["succeededOverSocket"]
    assert first["status"] == "SUCCEEDED"
    before = result["before"]
    assert (before["total"], before["available"]) == (product["totalLicenses"], product["availableLicenses"])
    # Its billing: active, paid until the period end, renewing then, with the scheduled change.
    assert product["renewsAt"] == product["currentPeriodEnd"]
    paid_until = datetime.fromisoformat(product["currentPeriodEnd"])
    assert (before["status"], before["scheduled"]) == ("Active", f"{SCHEDULED_LICENSES} licenses")
    # en-GB, medium: "10 Dec 2026" (ICU spells some months its own way: "Sept")
    assert before["paidUntil"] == before["renews"]
    day, month, year = before["paidUntil"].split()
    assert (int(day), int(year), month[:3]) == (paid_until.day, paid_until.year, f"{paid_until:%b}")
    assert purchase["productTotal"] == product["totalLicenses"] + 2
    assert purchase["productAvailable"] == product["availableLicenses"] + 2

    # A declined charge: the reason on screen, nothing bought.
    assert result["declined"]["code"] == "CARD_DECLINED"
    assert "declined" in result["declined"]["message"]
    assert result["declined"]["status"] == "FAILED" == declined["status"]
    assert "declined" in result["declined"]["failureReason"]
    assert result["declined"]["productTotal"] == product["totalLicenses"] + 2

    # 3-D Secure, completed from the page.
    assert result["secure"]["challenged"] == "REQUIRES_ACTION"
    assert secure["status"] == "SUCCEEDED"
    assert result["secure"]["productTotal"] == product["totalLicenses"] + 3

    # The order that settled while the socket was down was not on screen as
    # SUCCEEDED until the live list resumed, after the last event it had seen.
    gap = result["resumed"]
    assert gap["statusWhileOffline"] in {"PENDING", "PROCESSING"}
    assert gap["cursorBeforeDrop"] is not None
    # Once, with after: graphql-ws's own retry of the old subscription (no after) never went out.
    assert [variables["after"] for variables in gap["resubscribed"]] == [gap["cursorBeforeDrop"]]
    assert resumed["status"] == "SUCCEEDED"
    assert gap["productTotal"] == product["totalLicenses"] + 4

    # A storage plan, yearly: the summary shown is the API's, and the product appears.
    assert (
        result["storage"]["total"] == money(storage_quote["storageUpgradeSummary"]["total"]) == money(storage["total"])
    )
    assert "yearly" in result["storage"]["billing"]
    assert storage["status"] == "SUCCEEDED"
    held = products[STORAGE_PLAN]
    assert held["billingInterval"] == "YEARLY" and held["totalLicenses"] == 2
    assert result["storage"]["product"] == {"interval": "Yearly", "total": 2, "storage": f"{held['storageGb']} GB"}

    # The answer to Pay was lost after the gateway charged: the page said so,
    # Retry payment sent the same key, and the gateway returned the same order.
    lost = result["lostAnswer"]
    assert "Cannot reach the gateway" in lost["problemText"]
    assert lost["retryLabel"] == "Retry payment"
    assert len(lost["keys"]) == 2 and lost["keys"][0] == lost["keys"][1]
    assert retried["status"] == "SUCCEEDED"
    assert lost["productTotal"] == products[product["plan"]["id"]]["totalLicenses"] == product["totalLicenses"] + 5
    # Six orders in all: the retry charged nothing twice.
    assert len(orders) == 6

    assert sorted(result["removed"]["cards"]) == ["3155", "4242"]

    # The gateway closing the socket with 4401 ends the session on screen.
    assert "Token rejected" in result["rejected"]["text"]
    assert result["rejected"]["tokenField"] == ""

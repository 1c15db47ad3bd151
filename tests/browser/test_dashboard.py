"""The example dashboard (examples/dashboard) in headless Chromium, on its own
origin, against a real gateway that allows that origin: what a partner's
staff see on screen is what the gateway did, their own actions and the
gateway's renewal pass alike (run by the test mid-scenario, through the
scenario's hooks).

Set ``DASHBOARD_SCREENSHOTS`` to a folder to save the README's screenshots
there (``scripts/dashboard-screenshots`` does, into docs/images)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from billing.renewals import renew_due_products
from schema.scalars import serialize_date_time
from tests.api.helpers import set_period
from tests.conftest import sqlite_settings
from tests.support.browser import require_browser, run_scenario
from tests.support.dashboard import build_dashboard, require_dashboard_packages, serve_static
from tests.support.gateway import serve_gateway

PRODUCTS = """query($c: ID!) {
  products(actingCustomer: $c) {
    id plan { id } billingInterval totalLicenses availableLicenses storageGb status
    currentPeriodStart currentPeriodEnd renewsAt cancelAtPeriodEnd scheduledLicenses
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
ORDERS = "query($c: ID!) { orders(actingCustomer: $c, first: 50) { edges { node { id kind } } } }"
SCHEDULE = """mutation($c: ID!, $p: ID!, $n: Int!) {
  scheduleLicenseChange(actingCustomer: $c, input: {productId: $p, totalLicenses: $n}) { userErrors { code } }
}"""
SCHEDULED_LICENSES = 9
STORAGE_PLAN = "plan_storage_250gb"
ORDER = """query($c: ID!, $o: ID!) {
  order(actingCustomer: $c, id: $o) { status total { amount currency } summary { lines { description quantity } } }
}"""
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


def shown_day(text: str) -> date:
    """A date as the dashboard shows it (en-GB, medium, UTC: "10 Dec 2026";
    ICU spells some months its own way, "Sept"), as a date."""
    day, month, year = text.split()
    return datetime.strptime(f"{day} {month[:3]} {year}", "%d %b %Y").date()


def day_of(moment: str | datetime) -> date:
    """The UTC day of an API DateTime."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(UTC).date()


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

        # The scenario's hooks: the renewal pass, run here against the
        # gateway's database (as tests/api/test_renewals.py runs it) while
        # the page is open and subscribed.
        services = gateway.runtime.services
        ended: list[datetime] = []
        passes: list[tuple[dict[str, Any], dict[str, Any]]] = []  # what each pass did; the product just after

        async def period_ended(args: dict[str, str]) -> None:
            """The (monthly) product's paid period, a month from 40 days ago, ended some days ago."""
            period = await set_period(gateway, args["productId"], services.clock() - timedelta(days=40))
            assert period.end < services.clock(), period
            ended.append(period.end)

        async def renew(_: object) -> str:
            """One renewal pass now; the RENEWAL order it left awaiting authentication."""
            report = await renew_due_products(services)
            current = {p["id"]: p for p in (await owner.data(PRODUCTS, {"c": customer.id}))["products"]}
            passes.append(({**report.as_json(), "unsettled": report.unsettled}, current[product["id"]]))
            (order_id,) = report.unsettled
            return order_id

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
            hooks={"periodEnded": period_ended, "renew": renew},
        )
        result = report.passed()  # also: no request beyond the two origins, no console error

        async def order(order_id: str) -> dict[str, Any]:
            found: dict[str, Any] = (await owner.data(ORDER, {"c": customer.id, "o": order_id}))["order"]
            return found

        first, declined, secure, resumed, storage, retried, renewal_order = [
            await order(result[name]["orderId"])
            for name in ("purchase", "declined", "secure", "resumed", "storage", "lostAnswer", "renewal")
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
    assert before["paidUntil"] == before["renews"]
    assert shown_day(before["paidUntil"]) == day_of(paid_until)
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
    assert lost["productTotal"] == product["totalLicenses"] + 5
    # Six orders placed from the page in all: the retry charged nothing twice.
    # (The seventh is the gateway's renewal, below.)
    assert [edge["node"]["kind"] for edge in orders].count("RENEWAL") == 1
    assert len(orders) == 7

    # The period ended and the renewal pass ran (in this process) while the
    # page watched: one RENEWAL order, charged off-session to the primary
    # card, which needs authentication, so left REQUIRES_ACTION.
    renewal = result["renewal"]
    (period_end,) = ended
    ((counted, waiting),) = passes
    assert counted == {"renewed": 0, "failed": 0, "canceled": 0, "unsettled": [renewal["orderId"]]}
    # It arrived live (the page never reloads its order list): through the
    # page's socket, on screen as awaiting authentication with the button
    # that finishes it, for the scheduled licenses.
    assert renewal["challenged"] == "REQUIRES_ACTION"
    assert renewal["requiresActionOverSocket"]
    (line,) = renewal_order["summary"]["lines"]
    assert (line["quantity"], renewal["description"]) == (SCHEDULED_LICENSES, f"Renewal: {line['description']}")
    # Meanwhile the product is past due (docs/billing.md: the card asks for
    # authentication), still paid until the old period end, and the renewal
    # column says when the gateway would charge again (its renewsAt).
    past_due = renewal["pastDue"]
    assert (waiting["status"], past_due["status"]) == ("PAST_DUE", "Past due")
    assert shown_day(past_due["paidUntil"]) == day_of(period_end)
    assert past_due["renews"].startswith("Retry ")
    assert shown_day(past_due["renews"].removeprefix("Retry ")) == day_of(waiting["renewsAt"])
    assert (past_due["total"], past_due["scheduled"]) == (lost["productTotal"], f"{SCHEDULED_LICENSES} licenses")
    # The storage plan set to cancel says when, on screen.
    assert held["cancelAtPeriodEnd"] and held["renewsAt"] is None
    assert renewal["storage"].startswith("Cancels ")
    assert shown_day(renewal["storage"].removeprefix("Cancels ")) == day_of(held["currentPeriodEnd"])
    # Completed from the page: SUCCEEDED live, and the product ACTIVE for the
    # next period, renewing at its end, with the scheduled licenses.
    assert renewal_order["status"] == "SUCCEEDED"
    assert renewal["trail"] == "Pending → Needs authentication → Processing → Succeeded"
    assert renewal["succeededOverSocket"]
    backup = products[product["plan"]["id"]]
    assert (backup["status"], backup["currentPeriodStart"]) == ("ACTIVE", serialize_date_time(period_end))
    next_end = datetime.fromisoformat(backup["currentPeriodEnd"])
    assert next_end > services.clock() and backup["renewsAt"] == backup["currentPeriodEnd"]
    after = renewal["renewed"]
    assert after["status"] == "Active"
    assert after["paidUntil"] == after["renews"]
    assert shown_day(after["renews"]) == day_of(next_end)
    assert (after["total"], after["scheduled"]) == (SCHEDULED_LICENSES, "—")
    assert backup["totalLicenses"] == SCHEDULED_LICENSES and backup["scheduledLicenses"] is None

    assert sorted(result["removed"]["cards"]) == ["3155", "4242"]

    # The gateway closing the socket with 4401 ends the session on screen.
    assert "Token rejected" in result["rejected"]["text"]
    assert result["rejected"]["tokenField"] == ""

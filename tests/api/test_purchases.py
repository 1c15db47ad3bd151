"""Buying licenses and cloud storage: prices, proration, payment outcomes,
fulfilment exactly once, refusals, and the order list.

Proration is made deterministic by pinning the billing clock and moving the
product's period anchor to known instants; expected amounts are worked out
here from the catalogue prices, the days left and the period length.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from models import BillingInterval, Order, OrderEvent, OrderKind, OrderStatus, PaymentMethod, SandboxPayment
from schema.scalars import serialize_date_time
from tests.api.helpers import (  # noqa: F401 - fixtures
    LICENSE_SUMMARY,
    ORDERS,
    SHARED_LOOP,
    STORAGE_SUMMARY,
    add_card,
    billing_details,
    buy,
    buy_and_settle,
    codes,
    count_rows,
    error_codes,
    get_order,
    module_gateway,
    only_product,
    pin_clock,
    product,
    products,
    rows,
    set_period,
    shared_gateway,
    storage_products_of,
    upgrade,
    upgrade_and_settle,
    wait_for_status,
)
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLClient, serve_gateway

pytestmark = SHARED_LOOP


# Catalogue prices, per license per interval, in cents.
PROFESSIONAL_MONTHLY = 750
ESSENTIALS_YEARLY = 4000
STORAGE_250GB_MONTHLY = 250
STORAGE_1TB_MONTHLY = 800
STORAGE_1TB_YEARLY = 8000

# 2025-02-20 12:00 UTC; the Acme product's monthly periods run from the 10th.
FEB_20 = datetime(2025, 2, 20, 12, 0, tzinfo=UTC)
FEB_10 = datetime(2025, 2, 10, tzinfo=UTC)


def pro_rata(price: int, days_left: int, period_days: int) -> int:
    """price × days_left / period_days, rounded half up to a cent."""
    return math.floor(Fraction(price * days_left, period_days) + Fraction(1, 2))


def money(minor: int) -> dict[str, Any]:
    sign = "-" if minor < 0 else ""
    return {"amount": f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}", "minorUnits": minor, "currency": "USD"}


def line(description: str, quantity: int, unit: int) -> dict[str, Any]:
    return {
        "description": description,
        "quantity": quantity,
        "unitPrice": money(unit),
        "amount": money(quantity * unit),
    }


def summary(lines: list[dict[str, Any]], interval: str) -> dict[str, Any]:
    total = sum(entry["amount"]["minorUnits"] for entry in lines)
    return {"lines": lines, "subtotal": money(total), "total": money(total), "billingInterval": interval}


async def license_summary(client: GraphQLClient, customer_id: str, product_id: str, quantity: int) -> dict[str, Any]:
    variables = {"c": customer_id, "input": {"productId": product_id, "quantity": quantity}}
    result: dict[str, Any] = (await client.data(LICENSE_SUMMARY, variables))["licensePurchaseSummary"]
    return result


async def storage_summary(
    client: GraphQLClient, customer_id: str, plan_id: str, licenses: int, interval: str
) -> dict[str, Any]:
    variables = {"c": customer_id, "input": {"planId": plan_id, "licenses": licenses, "billingInterval": interval}}
    result: dict[str, Any] = (await client.data(STORAGE_SUMMARY, variables))["storageUpgradeSummary"]
    return result


async def charges(gateway: GatewayServer, order_id: str) -> list[SandboxPayment]:
    return await rows(gateway, SandboxPayment, SandboxPayment.order_id == order_id)


# -- license purchases: price -----------------------------------------------


@pytest.mark.parametrize(
    ("clock", "days_left", "period_end"),
    [
        (FEB_20, 18, "2025-03-10"),  # period Feb 10 → Mar 10 (28 days)
        (datetime(2025, 2, 10, 0, 0, tzinfo=UTC), 28, "2025-03-10"),  # first instant of the period: all of it
        (datetime(2025, 3, 9, 23, 0, tzinfo=UTC), 1, "2025-03-10"),  # last day still pays one day
        # Ended, not yet renewed (the pass runs every RENEWAL_INTERVAL_S, or the
        # gateway was down): one day, the ended period's last (docs/billing.md).
        (datetime(2025, 3, 10, 0, 0, 30, tzinfo=UTC), 1, "2025-03-10"),
        (datetime(2025, 3, 14, 12, 0, tzinfo=UTC), 1, "2025-03-10"),
    ],
)
async def test_license_summary_is_pro_rata_for_the_rest_of_a_monthly_period(
    gateway: GatewayServer, clock: datetime, days_left: int, period_end: str
) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await set_period(gateway, held["id"], FEB_10)
    pin_clock(gateway, clock)

    quoted = await license_summary(client, acme.id, held["id"], 3)

    unit = pro_rata(PROFESSIONAL_MONTHLY, days_left, 28)
    description = (
        f"Backup Professional: 3 licenses added, monthly, pro rata for {days_left} of 28 days until {period_end}"
    )
    assert quoted == summary([line(description, 3, unit)], "MONTHLY")


async def test_license_summary_on_a_yearly_product(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    globex = tenant.customers[1]
    client = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
    held = await only_product(client, globex.id)
    await set_period(gateway, held["id"], datetime(2024, 3, 1, tzinfo=UTC))
    pin_clock(gateway, FEB_20)  # period 2024-03-01 → 2025-03-01: 365 days, 9 left

    quoted = await license_summary(client, globex.id, held["id"], 1)

    unit = pro_rata(ESSENTIALS_YEARLY, 9, 365)
    assert unit == 99  # 4000 × 9 / 365 = 98.63…
    description = "Backup Essentials: 1 license added, yearly, pro rata for 9 of 365 days until 2025-03-01"
    assert quoted == summary([line(description, 1, unit)], "YEARLY")


async def test_license_summary_accepts_the_largest_quantity(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await set_period(gateway, held["id"], FEB_10)
    pin_clock(gateway, FEB_20)

    quoted = await license_summary(client, acme.id, held["id"], 10_000)

    unit = pro_rata(PROFESSIONAL_MONTHLY, 18, 28)
    assert quoted["total"] == money(10_000 * unit)
    assert quoted["lines"][0]["quantity"] == 10_000


async def test_buy_licenses_charges_exactly_the_summary_and_adds_licenses_once(gateway: GatewayServer) -> None:
    # given Acme (10 licenses, 7 assigned) with a card, 18 of 28 days left in its period
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    visa = await add_card(client, acme.id)
    await set_period(gateway, held["id"], FEB_10)
    pin_clock(gateway, FEB_20)
    quoted = await license_summary(client, acme.id, held["id"], 3)

    # when buying those 3 licenses
    payload = await buy(client, acme.id, held["id"], 3)

    # then the order charges exactly the quote, and the payment is confirmed later
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "PROCESSING"
    assert order["kind"] == "LICENSE_PURCHASE"
    assert order["summary"] == quoted
    assert order["total"] == quoted["total"] == money(3 * pro_rata(PROFESSIONAL_MONTHLY, 18, 28)) == money(1446)
    assert order["paymentMethod"] == {"id": visa["id"], "brand": "visa", "last4": "4242", "isPrimary": True}
    assert order["clientSecret"] is None and order["failureReason"] is None
    (charge,) = await charges(gateway, order["id"])
    assert (charge.amount_minor, charge.currency) == (1446, "USD")

    settled = await wait_for_status(client, acme.id, order["id"])
    assert settled["status"] == "SUCCEEDED"
    assert settled["summary"] == quoted
    after = await product(client, acme.id, held["id"])
    assert (after["totalLicenses"], after["assignedLicenses"], after["availableLicenses"]) == (13, 7, 6)
    # the other customer's product is untouched
    assert (await only_product(client, tenant.customers[1].id))["totalLicenses"] == 25
    statuses = [
        e.status
        for e in sorted(await rows(gateway, OrderEvent, OrderEvent.order_id == order["id"]), key=lambda e: e.seq)
    ]
    assert statuses == ["PENDING", "PROCESSING", "SUCCEEDED"]


async def test_successive_purchases_accumulate(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    globex = tenant.customers[1]
    client = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
    held = await only_product(client, globex.id)
    await add_card(client, globex.id, "pm_card_mastercard")

    for quantity in (1, 4, 10):
        assert (await buy_and_settle(client, globex.id, held["id"], quantity))["status"] == "SUCCEEDED"

    after = await product(client, globex.id, held["id"])
    assert (after["totalLicenses"], after["availableLicenses"]) == (25 + 15, 5 + 15)


@pytest_asyncio.fixture(loop_scope="module")
async def slow_gateway(tmp_path: Path) -> AsyncIterator[GatewayServer]:
    """A gateway whose sandbox takes a second to confirm a payment."""
    async with serve_gateway(sqlite_settings(tmp_path, sandbox_confirm_delay_ms=1000)) as server:
        yield server


async def test_licenses_are_added_only_once_the_payment_succeeded(slow_gateway: GatewayServer) -> None:
    tenant = await slow_gateway.tenant()
    acme = tenant.customers[0]
    client = slow_gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await add_card(client, acme.id)

    payload = await buy(client, acme.id, held["id"], 5)

    assert payload["order"]["status"] == "PROCESSING"
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 10
    assert (await get_order(client, acme.id, payload["order"]["id"]))["status"] == "PROCESSING"
    assert (await wait_for_status(client, acme.id, payload["order"]["id"]))["status"] == "SUCCEEDED"
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 15
    await asyncio.sleep(0.3)  # nothing arrives later to add them twice
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 15


# -- license purchases: payment outcomes ------------------------------------


async def test_a_declined_charge_fails_the_order_and_changes_nothing_else(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    card = await add_card(client, acme.id, "pm_card_chargeCustomerFail")
    assert (card["brand"], card["last4"], card["isPrimary"]) == ("visa", "0341", True)

    payload = await buy(client, acme.id, held["id"], 2)

    assert payload["userErrors"] == [{"field": None, "code": "CARD_DECLINED", "message": "Your card was declined."}]
    order = payload["order"]
    assert order["status"] == "FAILED"
    assert order["failureReason"] == "Your card was declined."
    assert order["paymentMethod"]["id"] == card["id"]
    await asyncio.sleep(0.15)  # longer than the sandbox's confirmation delay
    assert (await get_order(client, acme.id, order["id"]))["status"] == "FAILED"
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 10
    (charge,) = await charges(gateway, order["id"])  # one attempt, declined
    assert (charge.status, charge.amount_minor) == ("failed", order["total"]["minorUnits"])


async def test_three_d_secure_success_completes_the_order(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await add_card(client, acme.id, "pm_card_authenticationRequired")

    payload = await buy(client, acme.id, held["id"], 4)

    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "REQUIRES_ACTION"
    secret = order["clientSecret"]
    assert isinstance(secret, str) and secret
    await asyncio.sleep(0.15)
    still_waiting = await get_order(client, acme.id, order["id"])
    assert (still_waiting["status"], still_waiting["clientSecret"]) == ("REQUIRES_ACTION", secret)
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 10

    response = await gateway.http.post("/sandbox/authenticate", json={"clientSecret": secret, "success": True})
    assert response.status_code == 200
    assert response.json() == {"status": "PROCESSING"}

    settled = await wait_for_status(client, acme.id, order["id"])
    assert settled["status"] == "SUCCEEDED"
    assert settled["clientSecret"] is None
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 14
    # the challenge cannot be answered twice
    again = await gateway.http.post("/sandbox/authenticate", json={"clientSecret": secret, "success": True})
    assert again.status_code == 404
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 14


async def test_three_d_secure_failure_fails_the_order(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await add_card(client, acme.id, "pm_card_authenticationRequired")
    order = (await buy(client, acme.id, held["id"], 4))["order"]

    response = await gateway.http.post(
        "/sandbox/authenticate", json={"clientSecret": order["clientSecret"], "success": False}
    )

    assert response.status_code == 200 and response.json() == {"status": "FAILED"}
    failed = await get_order(client, acme.id, order["id"])
    assert (failed["status"], failed["failureReason"], failed["clientSecret"]) == (
        "FAILED",
        "3-D Secure authentication failed.",
        None,
    )
    await asyncio.sleep(0.15)
    assert (await get_order(client, acme.id, order["id"]))["status"] == "FAILED"
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 10


async def test_sandbox_authenticate_refuses_bad_requests(gateway: GatewayServer) -> None:
    for body in (b"not json", b"{}", b'{"clientSecret": 5}', b'{"clientSecret": "x", "success": "yes"}'):
        response = await gateway.http.post("/sandbox/authenticate", content=body)
        assert response.status_code == 400, body
    unknown = await gateway.http.post("/sandbox/authenticate", json={"clientSecret": "sbx_pi_x_secret_y"})
    assert unknown.status_code == 404


async def test_no_payment_method_is_refused_and_nothing_is_created(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)

    payload = await buy(client, acme.id, held["id"], 1)
    storage = await upgrade(client, acme.id, "plan_storage_250gb", 1)

    for refused in (payload, storage):
        assert refused["order"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("NO_PAYMENT_METHOD", ["input", "paymentMethodId"])
        ]
    assert await count_rows(gateway, Order, Order.customer_id == acme.id) == 0
    assert await products(client, acme.id) == [held]


async def test_an_explicit_payment_method_is_charged_instead_of_the_primary(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    visa = await add_card(client, acme.id, "pm_card_visa")
    amex = await add_card(client, acme.id, "pm_card_amex")
    failing = await add_card(client, acme.id, "pm_card_chargeCustomerFail")

    paid = await buy(client, acme.id, held["id"], 1, paymentMethodId=amex["id"])
    declined = await buy(client, acme.id, held["id"], 1, paymentMethodId=failing["id"])

    assert paid["order"]["paymentMethod"] == {"id": amex["id"], "brand": "amex", "last4": "8431", "isPrimary": False}
    assert declined["order"]["status"] == "FAILED" and codes(declined) == ["CARD_DECLINED"]
    assert (await wait_for_status(client, acme.id, paid["order"]["id"]))["status"] == "SUCCEEDED"
    assert (await product(client, acme.id, held["id"]))["totalLicenses"] == 11
    # choosing a method for one order does not change the primary
    assert (await billing_details(client, acme.id))["primaryPaymentMethod"]["id"] == visa["id"]


# -- refusals: quantities ---------------------------------------------------


async def test_invalid_quantities_are_refused_and_change_nothing(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await add_card(client, acme.id)

    for quantity in (0, -1, 10_001, 2_147_483_647):
        purchase = await buy(client, acme.id, held["id"], quantity)
        assert purchase["order"] is None, quantity
        assert [(e["code"], e["field"]) for e in purchase["userErrors"]] == [
            ("INVALID_QUANTITY", ["input", "quantity"])
        ], quantity
        storage = await upgrade(client, acme.id, "plan_storage_1tb", quantity)
        assert storage["order"] is None, quantity
        assert [(e["code"], e["field"]) for e in storage["userErrors"]] == [
            ("INVALID_QUANTITY", ["input", "licenses"])
        ], quantity
        for document, variables in (
            (LICENSE_SUMMARY, {"c": acme.id, "input": {"productId": held["id"], "quantity": quantity}}),
            (
                STORAGE_SUMMARY,
                {
                    "c": acme.id,
                    "input": {"planId": "plan_storage_1tb", "licenses": quantity, "billingInterval": "MONTHLY"},
                },
            ),
        ):
            body = await client.execute(document, variables)
            assert error_codes(body) == ["BAD_USER_INPUT"], (quantity, body)
            assert body["errors"][0]["extensions"]["reason"] == "INVALID_QUANTITY"

    assert await count_rows(gateway, Order, Order.customer_id == acme.id) == 0
    assert (
        await count_rows(
            gateway,
            SandboxPayment,
            SandboxPayment.payment_method_ref.in_(  # type: ignore[attr-defined]
                [m.provider_ref for m in await rows(gateway, PaymentMethod, PaymentMethod.customer_id == acme.id)]
            ),
        )
        == 0
    )
    assert await products(client, acme.id) == [held]


# -- storage ----------------------------------------------------------------


async def test_first_storage_plan_is_a_full_period_and_creates_a_storage_product(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    backup = await only_product(client, acme.id)
    await add_card(client, acme.id)
    pin_clock(gateway, FEB_20)

    quoted = await storage_summary(client, acme.id, "plan_storage_1tb", 4, "YEARLY")
    assert quoted == summary([line("Cloud Storage 1 TB: 4 licenses, yearly", 4, STORAGE_1TB_YEARLY)], "YEARLY")
    assert quoted["total"] == money(32_000)

    payload = await upgrade(client, acme.id, "plan_storage_1tb", 4, "YEARLY")

    assert payload["userErrors"] == []
    assert payload["order"]["kind"] == "STORAGE_UPGRADE"
    assert payload["order"]["summary"] == quoted
    assert payload["order"]["total"] == money(32_000)
    (charge,) = await charges(gateway, payload["order"]["id"])
    assert charge.amount_minor == 32_000
    # Not before the payment succeeded: the sandbox confirms 50 ms after the
    # charge, so on a loaded machine it may have by now; the products read is
    # meaningful when the order was still unsettled after it.
    early = await storage_products_of(client, acme.id)
    if (await get_order(client, acme.id, payload["order"]["id"]))["status"] != "SUCCEEDED":
        assert early == []
    assert (await wait_for_status(client, acme.id, payload["order"]["id"]))["status"] == "SUCCEEDED"

    held = await products(client, acme.id)
    assert held[0] == backup
    (storage,) = held[1:]
    assert storage["id"] != backup["id"]
    period = {k: storage.pop(k) for k in ("currentPeriodStart", "currentPeriodEnd", "renewsAt")}
    assert {k: v for k, v in storage.items() if k != "id"} == {
        "billingInterval": "YEARLY",
        "totalLicenses": 4,
        "assignedLicenses": 0,
        "availableLicenses": 4,
        "storageGb": 4 * 1024,
        "status": "ACTIVE",
        "cancelAtPeriodEnd": False,
        "scheduledLicenses": None,
        "plan": {"id": "plan_storage_1tb", "name": "Cloud Storage 1 TB", "kind": "CLOUD_STORAGE", "storageGb": 1024},
    }
    # A year paid from when the payment settled (the billing clock's Feb 20).
    assert period == {
        "currentPeriodStart": serialize_date_time(FEB_20),
        "currentPeriodEnd": serialize_date_time(FEB_20.replace(year=2026)),
        "renewsAt": serialize_date_time(FEB_20.replace(year=2026)),
    }


async def test_changing_storage_plan_credits_the_unused_days(gateway: GatewayServer) -> None:
    # given 10 × 250 GB monthly bought on Feb 20 (period Feb 20 → Mar 20, 28 days)
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
    await add_card(client, acme.id)
    pin_clock(gateway, FEB_20)
    first = await upgrade_and_settle(client, acme.id, "plan_storage_250gb", 10)
    assert first["total"] == money(10 * STORAGE_250GB_MONTHLY)
    (before,) = await storage_products_of(client, acme.id)
    assert (before["plan"]["id"], before["storageGb"]) == ("plan_storage_250gb", 2500)

    # when moving to 1 TB on Mar 6, 14 of 28 days later
    pin_clock(gateway, datetime(2025, 3, 6, 12, 0, tzinfo=UTC))
    quoted = await storage_summary(client, acme.id, "plan_storage_1tb", 10, "MONTHLY")

    credit_unit = pro_rata(STORAGE_250GB_MONTHLY, 14, 28)
    assert credit_unit == 125
    expected = summary(
        [
            line("Cloud Storage 1 TB: 10 licenses, monthly", 10, STORAGE_1TB_MONTHLY),
            line("Credit for 14 unused of 28 days on Cloud Storage 250 GB", 10, -credit_unit),
        ],
        "MONTHLY",
    )
    assert quoted == expected
    assert quoted["lines"][1]["unitPrice"] == {"amount": "-1.25", "minorUnits": -125, "currency": "USD"}
    assert quoted["lines"][1]["amount"] == {"amount": "-12.50", "minorUnits": -1250, "currency": "USD"}
    assert quoted["total"] == money(8000 - 1250)

    payload = await upgrade(client, acme.id, "plan_storage_1tb", 10)
    assert payload["userErrors"] == []
    assert payload["order"]["summary"] == quoted
    (charge,) = await charges(gateway, payload["order"]["id"])
    assert charge.amount_minor == 6750
    assert (await wait_for_status(client, acme.id, payload["order"]["id"]))["status"] == "SUCCEEDED"

    # then the same storage product now holds the new plan
    (after,) = await storage_products_of(client, acme.id)
    assert after["id"] == before["id"]
    assert (after["plan"]["id"], after["totalLicenses"], after["storageGb"], after["billingInterval"]) == (
        "plan_storage_1tb",
        10,
        10 * 1024,
        "MONTHLY",
    )


async def test_licenses_can_be_added_to_a_storage_product(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)
    pin_clock(gateway, FEB_20)
    await upgrade_and_settle(client, acme.id, "plan_storage_250gb", 10)
    (storage,) = await storage_products_of(client, acme.id)
    pin_clock(gateway, datetime(2025, 3, 6, 12, 0, tzinfo=UTC))

    order = await buy_and_settle(client, acme.id, storage["id"], 2)

    assert order["total"] == money(2 * pro_rata(STORAGE_250GB_MONTHLY, 14, 28))
    (after,) = await storage_products_of(client, acme.id)
    assert (after["totalLicenses"], after["storageGb"]) == (12, 12 * 250)


async def test_storage_downgrades_are_refused(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)
    pin_clock(gateway, FEB_20)
    await upgrade_and_settle(client, acme.id, "plan_storage_1tb", 10)
    (before,) = await storage_products_of(client, acme.id)
    orders_before = await count_rows(gateway, Order, Order.customer_id == acme.id)

    # a smaller plan, fewer licenses, or a change worth exactly the unused time
    for plan_id, licenses, interval in (
        ("plan_storage_250gb", 10, "MONTHLY"),
        ("plan_storage_1tb", 5, "MONTHLY"),
        ("plan_storage_1tb", 1, "YEARLY"),  # 8000 − 10 × 800 = 0
    ):
        payload = await upgrade(client, acme.id, plan_id, licenses, interval)
        assert payload["order"] is None, (plan_id, licenses, interval)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("DOWNGRADE_NOT_SUPPORTED", ["input", "planId"])
        ], (plan_id, licenses, interval)
        body = await client.execute(
            STORAGE_SUMMARY,
            {"c": acme.id, "input": {"planId": plan_id, "licenses": licenses, "billingInterval": interval}},
        )
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["extensions"]["reason"] == "DOWNGRADE_NOT_SUPPORTED"

    assert await storage_products_of(client, acme.id) == [before]
    assert await count_rows(gateway, Order, Order.customer_id == acme.id) == orders_before


async def test_the_same_storage_plan_again_is_nothing_to_change(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)
    await upgrade_and_settle(client, acme.id, "plan_storage_250gb", 3, "YEARLY")

    payload = await upgrade(client, acme.id, "plan_storage_250gb", 3, "YEARLY")

    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOTHING_TO_CHANGE", ["input"])]
    body = await client.execute(
        STORAGE_SUMMARY,
        {"c": acme.id, "input": {"planId": "plan_storage_250gb", "licenses": 3, "billingInterval": "YEARLY"}},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["reason"] == "NOTHING_TO_CHANGE"
    assert await count_rows(gateway, Order, Order.customer_id == acme.id) == 1


async def test_unknown_or_backup_plans_are_plan_not_found(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)

    for plan_id in ("plan_nope", "plan_backup_professional", "plan_backup_essentials", "", "x" * 100):
        payload = await upgrade(client, acme.id, plan_id, 1)
        assert payload["order"] is None, plan_id
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("PLAN_NOT_FOUND", ["input", "planId"])]
        body = await client.execute(
            STORAGE_SUMMARY, {"c": acme.id, "input": {"planId": plan_id, "licenses": 1, "billingInterval": "MONTHLY"}}
        )
        assert error_codes(body) == ["NOT_FOUND"], (plan_id, body)
        assert body["errors"][0]["extensions"]["reason"] == "PLAN_NOT_FOUND"

    assert await count_rows(gateway, Order, Order.customer_id == acme.id) == 0
    assert await storage_products_of(client, acme.id) == []


async def test_a_declined_storage_payment_creates_no_storage(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id, "pm_card_chargeCustomerFail")

    payload = await upgrade(client, acme.id, "plan_storage_5tb", 2)

    assert payload["order"]["status"] == "FAILED"
    assert codes(payload) == ["CARD_DECLINED"]
    await asyncio.sleep(0.15)
    assert await storage_products_of(client, acme.id) == []


async def test_a_storage_order_still_being_paid_blocks_another(slow_gateway: GatewayServer) -> None:
    tenant = await slow_gateway.tenant()
    acme = tenant.customers[0]
    client = slow_gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)
    first = await upgrade(client, acme.id, "plan_storage_250gb", 5)
    assert first["order"]["status"] == "PROCESSING"

    second = await upgrade(client, acme.id, "plan_storage_1tb", 5)

    assert second["order"] is None
    assert codes(second) == ["ORDER_IN_PROGRESS"]
    assert (await wait_for_status(client, acme.id, first["order"]["id"]))["status"] == "SUCCEEDED"
    (storage,) = await storage_products_of(client, acme.id)
    assert (storage["plan"]["id"], storage["totalLicenses"]) == ("plan_storage_250gb", 5)


async def test_a_storage_order_awaiting_authentication_blocks_another(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id, "pm_card_authenticationRequired")
    visa = await add_card(client, acme.id, "pm_card_visa")
    first = await upgrade(client, acme.id, "plan_storage_250gb", 5)
    assert first["order"]["status"] == "REQUIRES_ACTION"

    second = await upgrade(client, acme.id, "plan_storage_1tb", 5, paymentMethodId=visa["id"])

    # Accepting it charges a full 1 TB period; completing the first order later
    # then replaces 1 TB by 250 GB with no credit for the 1 TB just paid for.
    assert codes(second) == ["ORDER_IN_PROGRESS"]


async def test_a_license_purchase_on_storage_in_flight_blocks_a_storage_change(slow_gateway: GatewayServer) -> None:
    tenant = await slow_gateway.tenant()
    acme = tenant.customers[0]
    client = slow_gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id)
    await upgrade_and_settle(client, acme.id, "plan_storage_250gb", 10)
    (storage,) = await storage_products_of(client, acme.id)
    more = await buy(client, acme.id, storage["id"], 2)
    assert more["order"]["status"] == "PROCESSING"

    change = await upgrade(client, acme.id, "plan_storage_1tb", 10)

    # its credit line covers the 10 licenses held now, not the 12 there will be
    assert codes(change) == ["ORDER_IN_PROGRESS"]


# -- the order list ---------------------------------------------------------


async def test_orders_are_listed_newest_first_with_status_filter_and_pages(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    await add_card(client, acme.id)
    failing = await add_card(client, acme.id, "pm_card_chargeCustomerFail")
    three_ds = await add_card(client, acme.id, "pm_card_authenticationRequired")
    placed = [
        (await buy_and_settle(client, acme.id, held["id"], 1))["id"],
        (await buy(client, acme.id, held["id"], 2, paymentMethodId=failing["id"]))["order"]["id"],
        (await buy_and_settle(client, acme.id, held["id"], 3))["id"],
        (await buy(client, acme.id, held["id"], 4, paymentMethodId=three_ds["id"]))["order"]["id"],
        (await upgrade_and_settle(client, acme.id, "plan_storage_250gb", 1))["id"],
    ]
    newest_first = placed[::-1]

    everything = (await client.data(ORDERS, {"c": acme.id}))["orders"]
    assert [e["node"]["id"] for e in everything["edges"]] == newest_first
    assert [e["node"]["status"] for e in everything["edges"]] == [
        "SUCCEEDED",
        "REQUIRES_ACTION",
        "SUCCEEDED",
        "FAILED",
        "SUCCEEDED",
    ]
    assert [e["node"]["kind"] for e in everything["edges"]] == ["STORAGE_UPGRADE"] + ["LICENSE_PURCHASE"] * 4
    assert everything["pageInfo"] == {"hasNextPage": False, "endCursor": everything["edges"][-1]["cursor"]}

    # pages of two
    seen: list[str] = []
    after = None
    for expected_has_next in (True, True, False):
        page = (await client.data(ORDERS, {"c": acme.id, "first": 2, "after": after}))["orders"]
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasNextPage"] is expected_has_next
        after = page["pageInfo"]["endCursor"]
    assert seen == newest_first

    # by status
    succeeded = (await client.data(ORDERS, {"c": acme.id, "status": "SUCCEEDED"}))["orders"]["edges"]
    assert [e["node"]["id"] for e in succeeded] == [placed[4], placed[2], placed[0]]
    failed = (await client.data(ORDERS, {"c": acme.id, "status": "FAILED"}))["orders"]["edges"]
    assert [e["node"]["id"] for e in failed] == [placed[1]]
    first_succeeded = (await client.data(ORDERS, {"c": acme.id, "status": "SUCCEEDED", "first": 1}))["orders"]
    rest = (
        await client.data(
            ORDERS, {"c": acme.id, "status": "SUCCEEDED", "after": first_succeeded["pageInfo"]["endCursor"]}
        )
    )["orders"]
    assert [e["node"]["id"] for e in first_succeeded["edges"] + rest["edges"]] == [placed[4], placed[2], placed[0]]
    assert (await client.data(ORDERS, {"c": acme.id, "status": "CANCELED"}))["orders"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    # the other customer has none
    assert (await client.data(ORDERS, {"c": tenant.customers[1].id}))["orders"]["edges"] == []


async def test_orders_page_size_is_capped_at_100_and_bad_arguments_refused(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    held = await only_product(client, acme.id)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    async with gateway.runtime.db.orm(write=True) as session:
        for n in range(105):
            session.add(
                Order(
                    customer_id=acme.id,
                    partner_id=tenant.partner.id,
                    kind=OrderKind.LICENSE_PURCHASE,
                    status=OrderStatus.SUCCEEDED,
                    billing_interval=BillingInterval.MONTHLY,
                    subtotal_minor=100,
                    total_minor=100,
                    product_id=held["id"],
                    quantity=1,
                    request_fingerprint="x",
                    provider_idempotency_key=f"k{n}",
                    created_at=start + timedelta(minutes=n),
                    updated_at=start + timedelta(minutes=n),
                )
            )

    default_page = (await client.data(ORDERS, {"c": acme.id}))["orders"]
    capped = (await client.data(ORDERS, {"c": acme.id, "first": 500}))["orders"]
    rest = (await client.data(ORDERS, {"c": acme.id, "first": 500, "after": capped["pageInfo"]["endCursor"]}))["orders"]

    assert len(default_page["edges"]) == 20
    assert (len(capped["edges"]), capped["pageInfo"]["hasNextPage"]) == (100, True)
    assert (len(rest["edges"]), rest["pageInfo"]["hasNextPage"]) == (5, False)
    assert len({e["node"]["id"] for e in capped["edges"] + rest["edges"]}) == 105

    for variables in ({"first": -1}, {"after": "garbage"}, {"after": "WyJjc3QiLCJBIiwiYiJd"}):
        body = await client.execute(ORDERS, {"c": acme.id, **variables})
        assert body["data"] is None, variables
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)

"""Renewals: months and years of a customer's life, driven by the renewal pass
with a clock of its own, against a real gateway on a real SQLite file.

Each test has a gateway of its own (the pass renews every due product in the
database, so tests must not see each other's). The product under test is
given a paid period in 2025 with ``set_period``; the tenant's other product
is paid until 2100, out of every pass's way. A pass is run as the
``partner-billing renew`` command runs it: the pass, then the sandbox's
confirmations, then the count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from billing import payment_methods, renewals
from billing.periods import add_months
from billing.reconcile import reconcile_orders
from billing.renewals import NO_PAYMENT_METHOD, count_settled, renew_due_products
from models import AuditEntry, Order, OrderEvent, SandboxPayment
from payments.provider import ProviderUnavailable
from payments.sandbox import SandboxPaymentProvider
from schema.scalars import serialize_date_time
from tests.api.helpers import (
    CANCEL_PRODUCT,
    LICENSE_SUMMARY,
    RESUME_PRODUCT,
    SCHEDULE_LICENSE_CHANGE,
    add_card,
    buy,
    codes,
    only_product,
    pin_clock,
    rows,
    set_period,
    storage_products_of,
    upgrade_and_settle,
    wait_for_status,
)
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLClient, serve_gateway

PROFESSIONAL_MONTHLY = 750  # Backup Professional, per license per month
STORAGE_250GB_MONTHLY = 250
ESSENTIALS_YEARLY = 4000  # Backup Essentials, per license per year
JAN_31 = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
RENEWAL_FIELDS = """
    id kind status failureReason clientSecret
    total { minorUnits }
    summary { lines { description quantity unitPrice { minorUnits } amount { minorUnits } } total { minorUnits } }
    paymentMethod { id last4 }
"""
RENEWALS = f"""
query Renewals($c: ID!) {{
  orders(actingCustomer: $c, first: 100) {{ edges {{ node {{ {RENEWAL_FIELDS} }} }} }}
}}
"""
CHANGES = """
subscription($c: ID) { orderStatusChanged(actingCustomer: $c) { status order { id kind status total { minorUnits } } } }
"""


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayServer]:
    async with serve_gateway(sqlite_settings(tmp_path)) as server:
        yield server


@dataclass
class Holder:
    """A demo customer holding one product, seen by its partner's owner."""

    gateway: GatewayServer
    client: GraphQLClient
    customer_id: str
    product_id: str
    partner_id: str

    async def product(self) -> dict[str, Any]:
        return await only_product(self.client, self.customer_id)

    async def renewals(self) -> list[dict[str, Any]]:
        """The customer's RENEWAL orders, oldest first."""
        data = await self.client.data(RENEWALS, {"c": self.customer_id})
        nodes = [edge["node"] for edge in data["orders"]["edges"]]
        return [node for node in reversed(nodes) if node["kind"] == "RENEWAL"]

    async def change(self, document: str, **input: Any) -> dict[str, Any]:
        variables = {"c": self.customer_id, "input": {"productId": self.product_id, **input}}
        data = await self.client.data(document, variables)
        payload: dict[str, Any] = next(iter(data.values()))
        return payload


async def holder(gateway: GatewayServer, card: str | None = "pm_card_visa", *, customer: int = 0) -> Holder:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    customer_id = tenant.customers[customer].id
    if card is not None:
        await add_card(client, customer_id, card)
    product = await only_product(client, customer_id)
    for other in tenant.customers:
        if other.id != customer_id:  # out of every pass's way: paid until 2100
            await set_period(gateway, (await only_product(client, other.id))["id"], datetime(2100, 1, 1, tzinfo=UTC))
    return Holder(gateway, client, customer_id, product["id"], tenant.partner.id)


async def renew(gateway: GatewayServer, at: datetime) -> dict[str, int]:
    """One renewal pass as of ``at``, counted once the sandbox has confirmed."""
    services = gateway.runtime.services
    report = await renew_due_products(services, now=at)
    assert isinstance(services.provider, SandboxPaymentProvider)
    await services.provider.drain()
    report = await count_settled(services, report)
    return {**report.as_json(), "unsettled": len(report.unsettled)}


def counts(renewed: int = 0, failed: int = 0, canceled: int = 0, unsettled: int = 0) -> dict[str, int]:
    return {"renewed": renewed, "failed": failed, "canceled": canceled, "unsettled": unsettled}


def iso(moment: datetime) -> str:
    """As the API writes it (schema.scalars.DATE_TIME)."""
    return serialize_date_time(moment)


async def charged_amounts(gateway: GatewayServer, order_ids: list[str]) -> list[int]:
    payments = {p.order_id: p.amount_minor for p in await rows(gateway, SandboxPayment)}
    return [payments[order_id] for order_id in order_ids if order_id in payments]


async def statuses(gateway: GatewayServer, order_id: str) -> list[str]:
    events = sorted(await rows(gateway, OrderEvent, OrderEvent.order_id == order_id), key=lambda e: e.seq or 0)
    return [str(e.status) for e in events]


# -- a year of monthly renewals ------------------------------------------------


async def test_a_year_of_monthly_renewals_with_a_license_reduction(gateway: GatewayServer) -> None:
    # given Acme: Backup Professional, 10 licenses (7 assigned), paid from Jan 31
    acme = await holder(gateway)
    await set_period(gateway, acme.product_id, JAN_31)  # to Feb 28: a month from the 31st
    assert await renew(gateway, datetime(2025, 2, 28, 8, 59, tzinfo=UTC)) == counts()  # a minute early

    # when the partner schedules 8 licenses from the next period
    scheduled = await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=8)
    assert scheduled["userErrors"] == []
    assert (scheduled["product"]["totalLicenses"], scheduled["product"]["scheduledLicenses"]) == (10, 8)

    # then the first renewal charges 8 licenses for March, and the change takes effect
    assert await renew(gateway, datetime(2025, 2, 28, 9, 0, tzinfo=UTC)) == counts(renewed=1)
    product = await acme.product()
    assert (product["status"], product["totalLicenses"], product["scheduledLicenses"]) == ("ACTIVE", 8, None)
    assert (product["currentPeriodStart"], product["currentPeriodEnd"], product["renewsAt"]) == (
        "2025-02-28T09:00:00.000Z",
        "2025-03-31T09:00:00.000Z",  # back to the 31st: periods count from the anchor
        "2025-03-31T09:00:00.000Z",
    )
    (first,) = await acme.renewals()
    assert first["status"] == "SUCCEEDED" and first["paymentMethod"]["last4"] == "4242"
    assert first["summary"]["lines"] == [
        {
            "description": "Backup Professional: 8 licenses, monthly, 2025-02-28 to 2025-03-31",
            "quantity": 8,
            "unitPrice": {"minorUnits": PROFESSIONAL_MONTHLY},
            "amount": {"minorUnits": 8 * PROFESSIONAL_MONTHLY},
        }
    ]
    assert first["total"] == first["summary"]["total"] == {"minorUnits": 6000}
    assert await statuses(gateway, first["id"]) == ["PENDING", "PROCESSING", "SUCCEEDED"]
    # the same period is never charged twice, however often the pass runs
    assert await renew(gateway, datetime(2025, 3, 1, tzinfo=UTC)) == counts()

    # and each month after that renews once, at each month's end from the anchor
    ends = []
    for _ in range(10):
        ends.append((await acme.product())["currentPeriodEnd"])
        assert await renew(gateway, datetime.fromisoformat(ends[-1]) + timedelta(hours=1)) == counts(renewed=1)
    renewals = await acme.renewals()
    assert len(renewals) == 11
    assert {r["status"] for r in renewals} == {"SUCCEEDED"}
    assert await charged_amounts(gateway, [r["id"] for r in renewals]) == [6000] * 11
    assert [end[:10] for end in ends] == [
        "2025-03-31",
        "2025-04-30",
        "2025-05-31",
        "2025-06-30",
        "2025-07-31",
        "2025-08-31",
        "2025-09-30",
        "2025-10-31",
        "2025-11-30",
        "2025-12-31",
    ]
    assert (await acme.product())["currentPeriodEnd"] == "2026-01-31T09:00:00.000Z"


async def test_a_product_several_periods_behind_catches_up_one_period_per_pass(gateway: GatewayServer) -> None:
    acme = await holder(gateway)
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    may_1 = datetime(2025, 5, 1, tzinfo=UTC)

    for expected_end in ("2025-03-10", "2025-04-10", "2025-05-10"):
        assert await renew(gateway, may_1) == counts(renewed=1)
        assert (await acme.product())["currentPeriodEnd"].startswith(expected_end)
    assert await renew(gateway, may_1) == counts()
    assert len(await acme.renewals()) == 3


async def test_a_yearly_plan_renews_each_year_from_a_leap_day(gateway: GatewayServer) -> None:
    # Globex: Backup Essentials, yearly, 25 licenses, bought on Feb 29, 2024
    globex = await holder(gateway, customer=1)
    await set_period(gateway, globex.product_id, datetime(2024, 2, 29, tzinfo=UTC))

    ends = []
    for _ in range(4):
        end = datetime.fromisoformat((await globex.product())["currentPeriodEnd"])
        assert await renew(gateway, end - timedelta(days=1)) == counts()
        assert await renew(gateway, end) == counts(renewed=1)
        ends.append(end.date().isoformat())

    # 2028 is a leap year again: the anchor's Feb 29 comes back
    assert ends == ["2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"]
    product = await globex.product()
    assert (product["currentPeriodEnd"], product["billingInterval"]) == ("2029-02-28T00:00:00.000Z", "YEARLY")
    renewals = await globex.renewals()
    assert [r["total"]["minorUnits"] for r in renewals] == [25 * ESSENTIALS_YEARLY] * 4
    assert renewals[0]["summary"]["lines"][0]["description"] == (
        "Backup Essentials: 25 licenses, yearly, 2025-02-28 to 2026-02-28"
    )
    assert renewals[-1]["summary"]["lines"][0]["description"].endswith("2028-02-29 to 2029-02-28")


# -- failures, retries, cancellation ---------------------------------------------


async def test_a_declined_card_goes_past_due_is_retried_then_canceled(gateway: GatewayServer) -> None:
    acme = await holder(gateway, "pm_card_chargeCustomerFail")
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    end = datetime(2025, 2, 10, tzinfo=UTC)

    # at the period end: declined, past due, the next attempt a day later
    assert await renew(gateway, end) == counts(failed=1)
    product = await acme.product()
    assert (product["status"], product["renewsAt"]) == ("PAST_DUE", iso(end + timedelta(days=1)))
    assert product["currentPeriodEnd"] == iso(end)  # nothing new was paid
    (declined,) = await acme.renewals()
    assert (declined["status"], declined["failureReason"]) == ("FAILED", "Your card was declined.")
    # a past-due product takes no new licenses (the summary says so too)
    assert codes(await buy(acme.client, acme.customer_id, acme.product_id, 1)) == ["PRODUCT_NOT_ACTIVE"]
    body = await acme.client.execute(
        LICENSE_SUMMARY, {"c": acme.customer_id, "input": {"productId": acme.product_id, "quantity": 1}}
    )
    assert body["errors"][0]["extensions"]["reason"] == "PRODUCT_NOT_ACTIVE"

    # retried 1, 3 and 7 days after the end, and not in between
    for days, expected in ((1, counts(failed=1)), (3, counts(failed=1))):
        assert await renew(gateway, end + timedelta(days=days, seconds=-1)) == counts()
        assert await renew(gateway, end + timedelta(days=days)) == expected
        assert (await acme.product())["status"] == "PAST_DUE"
    assert (await acme.product())["renewsAt"] == iso(end + timedelta(days=7))
    assert await renew(gateway, end + timedelta(days=7)) == counts(failed=1, canceled=1)

    product = await acme.product()
    assert (product["status"], product["renewsAt"], product["currentPeriodEnd"]) == ("CANCELED", None, iso(end))
    assert await renew(gateway, end + timedelta(days=400)) == counts()  # a canceled product renews no more
    renewals = await acme.renewals()
    assert [r["status"] for r in renewals] == ["FAILED"] * 4
    assert await charged_amounts(gateway, [r["id"] for r in renewals]) == [7500] * 4  # tried, never paid
    for document in (SCHEDULE_LICENSE_CHANGE, CANCEL_PRODUCT, RESUME_PRODUCT):
        extra = {"totalLicenses": 8} if document is SCHEDULE_LICENSE_CHANGE else {}
        assert codes(await acme.change(document, **extra)) == ["PRODUCT_NOT_ACTIVE"]
    trail = [
        (e.action, e.outcome, e.user_id)
        for e in sorted(await rows(gateway, AuditEntry, AuditEntry.target_id == acme.product_id), key=lambda e: e.id)
        if e.action == "product.renewal"
    ]
    assert trail == [("product.renewal", "PAST_DUE", None)] * 3 + [("product.renewal", "CANCELED", None)]


async def test_a_card_replaced_while_past_due_pays_at_the_next_retry(gateway: GatewayServer) -> None:
    acme = await holder(gateway, "pm_card_chargeCustomerFail")
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    end = datetime(2025, 2, 10, tzinfo=UTC)
    assert await renew(gateway, end) == counts(failed=1)

    visa = await add_card(acme.client, acme.customer_id, "pm_card_visa", make_primary=True)
    assert await renew(gateway, end + timedelta(hours=12)) == counts()  # the retry waits for its day
    assert await renew(gateway, end + timedelta(days=1)) == counts(renewed=1)

    product = await acme.product()
    assert product["status"] == "ACTIVE"
    # the period paid is the one after the old end, not one from the day of payment
    assert (product["currentPeriodStart"], product["currentPeriodEnd"], product["renewsAt"]) == (
        iso(end),
        "2025-03-10T00:00:00.000Z",
        "2025-03-10T00:00:00.000Z",
    )
    declined, paid = await acme.renewals()
    assert (declined["status"], paid["status"]) == ("FAILED", "SUCCEEDED")
    assert paid["paymentMethod"]["id"] == visa["id"]
    assert paid["summary"]["lines"][0]["description"].endswith("2025-02-10 to 2025-03-10")
    # a later period starts without the earlier failures: the next one fails only after its own end
    assert await renew(gateway, datetime(2025, 3, 10, tzinfo=UTC)) == counts(renewed=1)


async def test_no_payment_method_fails_the_renewal_visibly(gateway: GatewayServer) -> None:
    acme = await holder(gateway, card=None)
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))

    assert await renew(gateway, datetime(2025, 2, 10, tzinfo=UTC)) == counts(failed=1)

    (renewal,) = await acme.renewals()
    assert (renewal["status"], renewal["failureReason"], renewal["paymentMethod"]) == (
        "FAILED",
        NO_PAYMENT_METHOD,
        None,
    )
    assert await statuses(gateway, renewal["id"]) == ["PENDING", "FAILED"]
    assert (await acme.product())["status"] == "PAST_DUE"
    assert await rows(gateway, SandboxPayment, SandboxPayment.order_id == renewal["id"]) == []


async def test_cancel_and_resume(gateway: GatewayServer) -> None:
    acme = await holder(gateway)
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    end = datetime(2025, 2, 10, tzinfo=UTC)

    canceling = await acme.change(CANCEL_PRODUCT)
    assert canceling["userErrors"] == []
    assert {k: canceling["product"][k] for k in ("status", "cancelAtPeriodEnd", "renewsAt", "currentPeriodEnd")} == {
        "status": "ACTIVE",  # until the period ends
        "cancelAtPeriodEnd": True,
        "renewsAt": None,
        "currentPeriodEnd": iso(end),
    }
    assert (await acme.change(CANCEL_PRODUCT))["product"]["cancelAtPeriodEnd"] is True  # twice: no change
    resumed = await acme.change(RESUME_PRODUCT)
    assert (resumed["product"]["cancelAtPeriodEnd"], resumed["product"]["renewsAt"]) == (False, iso(end))
    assert (await acme.change(RESUME_PRODUCT))["userErrors"] == []  # not set to cancel: no change

    # renewed while resumed; canceled again, it is not charged at the next end
    assert await renew(gateway, end) == counts(renewed=1)
    assert (await acme.change(CANCEL_PRODUCT))["userErrors"] == []
    # still active until then: licenses can still be added
    pin_clock(gateway, datetime(2025, 2, 20, tzinfo=UTC))
    bought = await buy(acme.client, acme.customer_id, acme.product_id, 1)
    assert bought["userErrors"] == []
    await wait_for_status(acme.client, acme.customer_id, bought["order"]["id"])
    assert await renew(gateway, datetime(2025, 3, 10, tzinfo=UTC)) == counts(canceled=1)

    product = await acme.product()
    assert (product["status"], product["renewsAt"], product["currentPeriodEnd"]) == (
        "CANCELED",
        None,
        "2025-03-10T00:00:00.000Z",
    )
    assert len(await acme.renewals()) == 1
    assert codes(await acme.change(RESUME_PRODUCT)) == ["PRODUCT_NOT_ACTIVE"]
    assert codes(await buy(acme.client, acme.customer_id, acme.product_id, 1)) == ["PRODUCT_NOT_ACTIVE"]
    actions = [
        (e.action, e.outcome)
        for e in sorted(await rows(gateway, AuditEntry, AuditEntry.partner_id == acme.partner_id), key=lambda e: e.id)
        if e.action.startswith("product.")
    ]
    assert actions == [
        ("product.cancel", "OK"),
        ("product.cancel", "OK"),
        ("product.resume", "OK"),
        ("product.resume", "OK"),
        ("product.renewal", "ACTIVE"),
        ("product.cancel", "OK"),
        ("product.renewal", "CANCELED"),
        ("product.resume", "PRODUCT_NOT_ACTIVE"),
    ]


async def test_canceling_a_past_due_product_cancels_it_at_once(gateway: GatewayServer) -> None:
    acme = await holder(gateway, "pm_card_chargeCustomerFail")
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    assert await renew(gateway, datetime(2025, 2, 10, tzinfo=UTC)) == counts(failed=1)

    canceled = await acme.change(CANCEL_PRODUCT)

    assert (canceled["product"]["status"], canceled["product"]["renewsAt"]) == ("CANCELED", None)
    assert await renew(gateway, datetime(2025, 2, 11, tzinfo=UTC)) == counts()
    assert len(await acme.renewals()) == 1


async def test_a_storage_plan_renews_and_a_canceled_one_can_be_bought_again(gateway: GatewayServer) -> None:
    acme = await holder(gateway)
    pin_clock(gateway, datetime(2025, 2, 20, tzinfo=UTC))
    bought = await upgrade_and_settle(acme.client, acme.customer_id, "plan_storage_250gb", 4)
    assert bought["status"] == "SUCCEEDED"
    (storage,) = await storage_products_of(acme.client, acme.customer_id)
    assert (storage["currentPeriodStart"], storage["currentPeriodEnd"]) == (
        "2025-02-20T00:00:00.000Z",
        "2025-03-20T00:00:00.000Z",
    )

    assert await renew(gateway, datetime(2025, 3, 20, tzinfo=UTC)) == counts(renewed=1)
    storage_renewals = [r for r in await acme.renewals() if "Cloud Storage" in r["summary"]["lines"][0]["description"]]
    assert [r["total"]["minorUnits"] for r in storage_renewals] == [4 * STORAGE_250GB_MONTHLY]
    cancel = await acme.client.data(CANCEL_PRODUCT, {"c": acme.customer_id, "input": {"productId": storage["id"]}})
    assert cancel["cancelProduct"]["userErrors"] == []
    assert await renew(gateway, datetime(2025, 4, 20, tzinfo=UTC)) == counts(canceled=1)

    # the same plan again, a month later: a new first period, no credit for a canceled one
    pin_clock(gateway, datetime(2025, 5, 1, tzinfo=UTC))
    again = await upgrade_and_settle(acme.client, acme.customer_id, "plan_storage_250gb", 4)
    assert [line["description"] for line in again["summary"]["lines"]] == ["Cloud Storage 250 GB: 4 licenses, monthly"]
    assert again["total"]["minorUnits"] == 4 * STORAGE_250GB_MONTHLY
    (restarted,) = await storage_products_of(acme.client, acme.customer_id)
    assert restarted["id"] == storage["id"]
    assert {k: restarted[k] for k in ("status", "cancelAtPeriodEnd", "currentPeriodStart", "renewsAt")} == {
        "status": "ACTIVE",
        "cancelAtPeriodEnd": False,
        "currentPeriodStart": "2025-05-01T00:00:00.000Z",
        "renewsAt": "2025-06-01T00:00:00.000Z",
    }


async def test_the_worked_example_of_docs_billing(gateway: GatewayServer) -> None:
    """docs/billing.md, "A worked example", row by row."""
    acme = await holder(gateway)
    await set_period(gateway, acme.product_id, JAN_31)

    # Feb 10: the summary for 3 licenses, then the purchase
    pin_clock(gateway, datetime(2025, 2, 10, 12, 0, tzinfo=UTC))
    variables = {"c": acme.customer_id, "input": {"productId": acme.product_id, "quantity": 3}}
    summary = (await acme.client.data(LICENSE_SUMMARY, variables))["licensePurchaseSummary"]
    assert [(line["description"], line["unitPrice"]["minorUnits"]) for line in summary["lines"]] == [
        ("Backup Professional: 3 licenses added, monthly, pro rata for 18 of 28 days until 2025-02-28", 482)
    ]
    assert summary["total"] == {"amount": "14.46", "minorUnits": 1446, "currency": "USD"}
    bought = await buy(acme.client, acme.customer_id, acme.product_id, 3)
    assert bought["order"]["total"]["minorUnits"] == 1446
    assert (await wait_for_status(acme.client, acme.customer_id, bought["order"]["id"]))["status"] == "SUCCEEDED"
    assert (await acme.product())["totalLicenses"] == 13

    # Feb 15: 8 licenses from the next period
    pin_clock(gateway, datetime(2025, 2, 15, tzinfo=UTC))
    scheduled = (await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=8))["product"]
    assert (scheduled["scheduledLicenses"], scheduled["totalLicenses"]) == (8, 13)

    # Feb 28 09:00: renewed for 8 licenses
    assert await renew(gateway, datetime(2025, 2, 28, 9, 0, tzinfo=UTC)) == counts(renewed=1)
    (first,) = await acme.renewals()
    assert first["summary"]["lines"][0]["description"] == (
        "Backup Professional: 8 licenses, monthly, 2025-02-28 to 2025-03-31"
    )
    assert first["total"]["minorUnits"] == 6000
    product = await acme.product()
    assert (product["status"], product["totalLicenses"], product["scheduledLicenses"]) == ("ACTIVE", 8, None)
    assert product["currentPeriodEnd"] == product["renewsAt"] == "2025-03-31T09:00:00.000Z"

    # Mar 31 09:00: the primary card, changed since, is declined
    await add_card(acme.client, acme.customer_id, "pm_card_chargeCustomerFail", make_primary=True)
    assert await renew(gateway, datetime(2025, 3, 31, 9, 0, tzinfo=UTC)) == counts(failed=1)
    product = await acme.product()
    assert (product["status"], product["currentPeriodEnd"], product["renewsAt"]) == (
        "PAST_DUE",
        "2025-03-31T09:00:00.000Z",
        "2025-04-01T09:00:00.000Z",
    )

    # a new card, and the retry on Apr 1 09:00 pays Mar 31 to Apr 30
    await add_card(acme.client, acme.customer_id, "pm_card_visa", make_primary=True)
    assert await renew(gateway, datetime(2025, 4, 1, 9, 0, tzinfo=UTC)) == counts(renewed=1)
    product = await acme.product()
    assert (product["status"], product["currentPeriodEnd"]) == ("ACTIVE", "2025-04-30T09:00:00.000Z")
    assert [(r["status"], r["total"]["minorUnits"]) for r in await acme.renewals()] == [
        ("SUCCEEDED", 6000),
        ("FAILED", 6000),
        ("SUCCEEDED", 6000),
    ]

    # Apr 10: cancel; Apr 30 09:00: canceled, nothing charged
    canceling = (await acme.change(CANCEL_PRODUCT))["product"]
    assert (canceling["status"], canceling["cancelAtPeriodEnd"], canceling["renewsAt"]) == ("ACTIVE", True, None)
    assert await renew(gateway, datetime(2025, 4, 30, 9, 0, tzinfo=UTC)) == counts(canceled=1)
    assert (await acme.product())["status"] == "CANCELED"
    assert codes(await buy(acme.client, acme.customer_id, acme.product_id, 1)) == ["PRODUCT_NOT_ACTIVE"]
    assert codes(await acme.change(RESUME_PRODUCT)) == ["PRODUCT_NOT_ACTIVE"]
    assert len(await acme.renewals()) == 3


# -- license changes: the contract's rules ----------------------------------------


async def test_schedule_license_change_rules(gateway: GatewayServer) -> None:
    acme = await holder(gateway)  # 10 licenses, 7 assigned

    def error(code: str) -> dict[str, Any]:
        return {"field": ["input", "totalLicenses"], "code": code}

    for total, expected in ((0, "INVALID_QUANTITY"), (-3, "INVALID_QUANTITY"), (11, "INVALID_QUANTITY")):
        payload = await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=total)
        assert payload["product"] is None
        assert [{k: e[k] for k in ("field", "code")} for e in payload["userErrors"]] == [error(expected)], total
    in_use = await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=6)
    assert [{k: e[k] for k in ("field", "code")} for e in in_use["userErrors"]] == [error("LICENSES_IN_USE")]
    assert "7 licenses are assigned" in in_use["userErrors"][0]["message"]

    assert (await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=7))["product"]["scheduledLicenses"] == 7
    # as many as now: the schedule is undone
    assert (await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=10))["product"]["scheduledLicenses"] is None

    for product_id in ("prd_nope", "", "x" * 100):
        payload = await acme.client.data(
            SCHEDULE_LICENSE_CHANGE, {"c": acme.customer_id, "input": {"productId": product_id, "totalLicenses": 8}}
        )
        assert codes(payload["scheduleLicenseChange"]) == ["PRODUCT_NOT_FOUND"], product_id
    refused = [
        e.outcome
        for e in sorted(await rows(gateway, AuditEntry, AuditEntry.partner_id == acme.partner_id), key=lambda e: e.id)
        if e.action == "product.schedule_license_change"
    ]
    assert refused == ["INVALID_QUANTITY"] * 3 + ["LICENSES_IN_USE", "OK", "OK"] + ["PRODUCT_NOT_FOUND"] * 3


# -- 3-D Secure ---------------------------------------------------------------------


async def test_a_renewal_needing_authentication_waits_for_the_partner(gateway: GatewayServer) -> None:
    acme = await holder(gateway, "pm_card_authenticationRequired")
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    end = datetime(2025, 2, 10, tzinfo=UTC)

    assert await renew(gateway, end) == counts(unsettled=1)

    (renewal,) = await acme.renewals()
    assert renewal["status"] == "REQUIRES_ACTION" and renewal["clientSecret"]
    assert (await acme.product())["status"] == "PAST_DUE"
    # while it waits, the pass leaves the product alone and nothing else is charged
    assert await renew(gateway, end + timedelta(days=5)) == counts()
    assert codes(await acme.change(SCHEDULE_LICENSE_CHANGE, totalLicenses=8)) == ["ORDER_IN_PROGRESS"]

    # the partner finishes 3-D Secure (the dashboard does this with the client secret)
    response = await gateway.http.post(
        "/sandbox/authenticate", json={"clientSecret": renewal["clientSecret"], "success": True}
    )
    assert response.status_code == 200, response.text
    settled = await wait_for_status(acme.client, acme.customer_id, renewal["id"])

    assert settled["status"] == "SUCCEEDED" and settled["clientSecret"] is None
    product = await acme.product()
    assert (product["status"], product["currentPeriodEnd"]) == ("ACTIVE", "2025-03-10T00:00:00.000Z")
    assert await statuses(gateway, renewal["id"]) == ["PENDING", "REQUIRES_ACTION", "PROCESSING", "SUCCEEDED"]


async def test_an_abandoned_renewal_challenge_is_a_failed_attempt(gateway: GatewayServer) -> None:
    """Nobody finishes 3-D Secure for a day: reconciliation cancels the order,
    which counts as the period's first failed attempt; a card made primary
    meanwhile pays the next retry (docs/billing.md, "Renewal")."""
    acme = await holder(gateway, "pm_card_authenticationRequired")
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    end = datetime(2025, 2, 10, tzinfo=UTC)
    assert await renew(gateway, end) == counts(unsettled=1)
    (challenge,) = await acme.renewals()
    assert challenge["status"] == "REQUIRES_ACTION"

    # A day and an hour after it was asked for, in the clock of the order's last change.
    async with gateway.runtime.db.orm() as session:
        stored = await session.get(Order, challenge["id"])
        assert stored is not None
    pin_clock(gateway, stored.updated_at + timedelta(hours=25))
    report = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))

    assert report.changed == 1
    (abandoned,) = await acme.renewals()
    assert (abandoned["status"], abandoned["clientSecret"]) == ("CANCELED", None)
    assert await statuses(gateway, challenge["id"]) == ["PENDING", "REQUIRES_ACTION", "CANCELED"]
    product = await acme.product()
    assert (product["status"], product["renewsAt"]) == ("PAST_DUE", iso(end + timedelta(days=1)))

    await add_card(acme.client, acme.customer_id, "pm_card_visa", make_primary=True)
    assert await renew(gateway, end + timedelta(days=1)) == counts(renewed=1)
    abandoned, paid = await acme.renewals()
    assert paid["status"] == "SUCCEEDED"
    product = await acme.product()
    assert (product["status"], product["currentPeriodEnd"]) == ("ACTIVE", iso(datetime(2025, 3, 10, tzinfo=UTC)))


# -- crashes ------------------------------------------------------------------------


async def test_a_renewal_stored_but_never_charged_is_charged_once_by_reconcile(
    gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway stored the order and died (or lost the provider) before
    the charge: the next passes leave it alone, reconciliation charges it once."""
    acme = await holder(gateway)
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    provider = gateway.runtime.services.provider

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ProviderUnavailable("the network is gone")

    with monkeypatch.context() as patch:
        patch.setattr(provider, "charge", unreachable)
        assert await renew(gateway, datetime(2025, 2, 10, tzinfo=UTC)) == counts(unsettled=1)
    (renewal,) = await acme.renewals()
    assert renewal["status"] == "PENDING"
    assert (await acme.product())["status"] == "ACTIVE"
    # nothing may change the product's licenses under the unsettled renewal
    assert codes(await buy(acme.client, acme.customer_id, acme.product_id, 1)) == ["ORDER_IN_PROGRESS"]
    assert await renew(gateway, datetime(2025, 2, 12, tzinfo=UTC)) == counts()

    report = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))
    await wait_for_status(acme.client, acme.customer_id, renewal["id"])

    assert report.changed == 1
    assert [r["status"] for r in await acme.renewals()] == ["SUCCEEDED"]
    assert (await acme.product())["currentPeriodEnd"] == "2025-03-10T00:00:00.000Z"
    assert await charged_amounts(gateway, [renewal["id"]]) == [7500]
    assert await renew(gateway, datetime(2025, 2, 12, tzinfo=UTC)) == counts()
    assert len(await rows(gateway, Order, Order.product_id == acme.product_id)) == 1  # the refused purchase made none


async def test_a_charge_whose_confirmation_died_with_the_process_is_settled_once(gateway: GatewayServer) -> None:
    """Charged, then the process died before the confirmation arrived: the
    order stays PROCESSING, no pass charges again, reconciliation settles it."""
    acme = await holder(gateway)
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    provider = gateway.runtime.services.provider
    assert isinstance(provider, SandboxPaymentProvider)
    provider._delay = 60  # the "bank" would confirm in a minute…
    report = await renew_due_products(gateway.runtime.services, now=datetime(2025, 2, 10, tzinfo=UTC))
    await provider.aclose()  # …but the process is gone before that
    assert (report.renewed, len(report.unsettled)) == (0, 1)
    (renewal,) = await acme.renewals()
    assert renewal["status"] == "PROCESSING"
    assert await renew(gateway, datetime(2025, 2, 11, tzinfo=UTC)) == counts()

    later = datetime.now(UTC) + timedelta(minutes=5)
    pin_clock(gateway, later)
    provider._clock = lambda: later  # the bank sees the time pass too
    first = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))
    second = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))

    assert (first.changed, second.changed) == (1, 0)
    assert await statuses(gateway, renewal["id"]) == ["PENDING", "PROCESSING", "SUCCEEDED"]
    product = await acme.product()
    assert (product["status"], product["currentPeriodEnd"]) == ("ACTIVE", "2025-03-10T00:00:00.000Z")
    assert await charged_amounts(gateway, [renewal["id"]]) == [7500]


async def test_one_products_trouble_does_not_hold_up_the_others(
    gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    troubled, fine = await holder(gateway), await holder(gateway)
    for who in (troubled, fine):
        await set_period(gateway, who.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    real = payment_methods.primary_payment_method

    async def flaky(conn: Any, customer_id: str) -> Any:
        if customer_id == troubled.customer_id:
            raise RuntimeError("a bug, say")
        return await real(conn, customer_id)

    monkeypatch.setattr(renewals, "primary_payment_method", flaky)
    assert await renew(gateway, datetime(2025, 2, 10, tzinfo=UTC)) == counts(renewed=1)

    assert (await fine.product())["currentPeriodEnd"] == "2025-03-10T00:00:00.000Z"
    assert (await troubled.product())["currentPeriodEnd"] == "2025-02-10T00:00:00.000Z"
    assert await troubled.renewals() == []  # its transaction rolled back: nothing half done
    assert f"renewal of {troubled.product_id} failed" in caplog.text
    monkeypatch.undo()
    assert await renew(gateway, datetime(2025, 2, 10, 1, tzinfo=UTC)) == counts(renewed=1)  # the next pass


async def test_the_running_gateway_renews_on_its_own_one_period_per_pass(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path / "periodic", renewal_interval_s=0.2)) as gateway:
        acme = await holder(gateway)
        # three months behind, by the real clock the gateway runs on
        start = add_months(datetime.now(UTC), -3)
        await set_period(gateway, acme.product_id, start)

        deadline = time.monotonic() + 30
        while datetime.fromisoformat((await acme.product())["currentPeriodEnd"]) < datetime.now(UTC):
            assert time.monotonic() < deadline, await acme.product()
            await asyncio.sleep(0.05)
        renewals = [await wait_for_status(acme.client, acme.customer_id, r["id"]) for r in await acme.renewals()]

        assert [r["status"] for r in renewals] == ["SUCCEEDED"] * 3
        assert [r["summary"]["lines"][0]["description"][-24:] for r in renewals] == [
            f"{add_months(start, n).date()} to {add_months(start, n + 1).date()}" for n in (1, 2, 3)
        ]


# -- seen live ------------------------------------------------------------------------


async def test_renewal_status_changes_reach_order_status_changed_subscribers(gateway: GatewayServer) -> None:
    acme = await holder(gateway)
    other = await holder(gateway)  # another partner: must see none of it
    await set_period(gateway, acme.product_id, datetime(2025, 1, 10, tzinfo=UTC))
    token = acme.client.token
    other_token = other.client.token
    assert token is not None and other_token is not None

    async with gateway.websocket(token) as ws, gateway.websocket(other_token) as other_ws:
        op = await ws.subscribe(CHANGES, {"c": acme.customer_id})
        other_op = await other_ws.subscribe(CHANGES, {})
        # The protocol does not acknowledge a subscription: a purchase's
        # events arriving says it is live.
        await warm_up(ws, op, acme)
        await warm_up(other_ws, other_op, other)

        assert await renew(gateway, datetime(2025, 2, 10, tzinfo=UTC)) == counts(renewed=1)
        events = [(await ws.next_data(op))["orderStatusChanged"] for _ in range(3)]

        (renewal,) = await acme.renewals()
        assert [(e["order"]["id"], e["order"]["kind"], e["status"]) for e in events] == [
            (renewal["id"], "RENEWAL", "PENDING"),
            (renewal["id"], "RENEWAL", "PROCESSING"),
            (renewal["id"], "RENEWAL", "SUCCEEDED"),
        ]
        assert events[-1]["order"]["total"] == {"minorUnits": 11 * PROFESSIONAL_MONTHLY}  # with the warm-up's license
        # the other partner's subscriber hears its own next purchase, and nothing before it
        await warm_up(other_ws, other_op, other)


async def warm_up(ws: Any, op: str, who: Holder) -> None:
    """Buy one license and wait for that order's SUCCEEDED on the subscription;
    anything else arriving first is a failure."""
    placed = await buy(who.client, who.customer_id, who.product_id, 1)
    assert placed["userErrors"] == [], placed
    while True:
        event = (await ws.next_data(op, timeout=10))["orderStatusChanged"]
        assert event["order"]["id"] == placed["order"]["id"], event
        if event["status"] == "SUCCEEDED":
            return

"""Reconciliation with the sandbox provider: orders the gateway left unsettled."""

from __future__ import annotations

from datetime import timedelta

from billing.reconcile import reconcile_orders
from models import Order, OrderEvent, SandboxPayment
from models.base import utcnow
from tests.api.helpers import (
    add_card,
    buy,
    count_rows,
    get_order,
    only_product,
    owner,
    pin_clock,
    rows,
    upgrade,
)
from tests.support.gateway import GatewayServer


async def test_an_abandoned_3ds_storage_order_is_canceled_and_unblocks_plan_changes(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0].id
    client = owner(gateway, tenant)
    await add_card(client, acme, "pm_card_authenticationRequired")
    first = await upgrade(client, acme, "plan_storage_250gb", 5, "MONTHLY")
    order_id = first["order"]["id"]
    assert first["order"]["status"] == "REQUIRES_ACTION"
    blocked = await upgrade(client, acme, "plan_storage_1tb", 5, "MONTHLY")
    assert [e["code"] for e in blocked["userErrors"]] == ["ORDER_IN_PROGRESS"]

    # A day later nobody has finished 3-D Secure.
    pin_clock(gateway, utcnow() + timedelta(hours=25))
    report = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))

    assert report.changed == 1
    order = await get_order(client, acme, order_id)
    assert order["status"] == "CANCELED" and order["clientSecret"] is None
    [payment] = await rows(gateway, SandboxPayment, SandboxPayment.order_id == order_id)
    assert payment.status == "canceled"
    statuses = [e.status for e in await rows(gateway, OrderEvent, OrderEvent.order_id == order_id)]
    assert statuses == ["PENDING", "REQUIRES_ACTION", "CANCELED"]
    assert [p["plan"]["id"] for p in [await only_product(client, acme)]] == ["plan_backup_professional"]
    retry = await upgrade(client, acme, "plan_storage_1tb", 5, "MONTHLY")
    assert retry["userErrors"] == [] and retry["order"]["status"] == "REQUIRES_ACTION"


async def test_a_recent_3ds_order_is_left_alone(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0].id
    client = owner(gateway, tenant)
    await add_card(client, acme, "pm_card_authenticationRequired")
    placed = await upgrade(client, acme, "plan_storage_250gb", 5, "MONTHLY")

    report = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))

    assert report.changed == 0
    assert (await get_order(client, acme, placed["order"]["id"]))["status"] == "REQUIRES_ACTION"
    assert await count_rows(gateway, Order, Order.status == "CANCELED") == 0


async def test_a_confirmation_lost_with_the_process_is_settled_once_by_reconcile(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0].id
    client = owner(gateway, tenant)
    await add_card(client, acme)
    product = await only_product(client, acme)
    provider = gateway.runtime.services.provider
    provider._delay = 60  # type: ignore[attr-defined]
    placed = await buy(client, acme, product["id"], 4)
    assert placed["order"]["status"] == "PROCESSING"
    # The process "dies": its pending confirmation never arrives.
    await provider.aclose()

    pin_clock(gateway, utcnow() + timedelta(minutes=5))
    provider._clock = gateway.runtime.services.clock  # type: ignore[attr-defined]  # the "bank" sees time pass too
    first = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))
    second = await reconcile_orders(gateway.runtime.services, older_than=timedelta(0))

    assert (first.changed, second.changed) == (1, 0)
    assert (await get_order(client, acme, placed["order"]["id"]))["status"] == "SUCCEEDED"
    assert (await only_product(client, acme))["totalLicenses"] == product["totalLicenses"] + 4
    assert await count_rows(gateway, SandboxPayment, SandboxPayment.order_id == placed["order"]["id"]) == 1

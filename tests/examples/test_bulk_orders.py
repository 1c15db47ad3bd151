"""examples/automation against a running gateway: the script run as a partner
runs it (a separate process), checked through the API and the gateway's own
records of what was charged."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlmodel import col

from billing.onboarding import DemoTenant
from models import Order, SandboxPayment
from settings import RateLimit
from tests.api.helpers import (  # noqa: F401 - fixtures
    SHARED_LOOP,
    add_card,
    count_rows,
    module_gateway,
    only_product,
    products,
    rows,
    shared_gateway,
)
from tests.conftest import sqlite_settings
from tests.examples.lossy_proxy import lossy_proxy
from tests.examples.script import run_script, write_csv
from tests.support.gateway import GatewayServer, GraphQLClient, serve_gateway

pytestmark = SHARED_LOOP

STORAGE_PLAN = "plan_storage_1tb"


async def charges(gateway: GatewayServer, customer_id: str) -> int:
    """Payments the provider was asked for, for this customer's orders."""
    order_ids = [o.id for o in await rows(gateway, Order, Order.customer_id == customer_id)]
    return await count_rows(gateway, SandboxPayment, col(SandboxPayment.order_id).in_(order_ids))


def summary_rows(table: str) -> dict[int, str]:
    """The summary table's rows by CSV line number."""
    found: dict[int, str] = {}
    for row in table.splitlines():
        cells = row.split()
        if len(cells) > 2 and cells[0].isdigit() and cells[1] != "of":
            found[int(cells[0])] = row
    return found


async def orders_of(gateway: GatewayServer, customer_id: str) -> set[str]:
    return {o.id for o in await rows(gateway, Order, Order.customer_id == customer_id)}


async def licenses(client: GraphQLClient, customer_id: str) -> dict[str, int]:
    """Total licenses per plan the customer holds."""
    return {p["plan"]["id"]: p["totalLicenses"] for p in await products(client, customer_id)}


async def shop(gateway: GatewayServer, globex_card: str = "pm_card_visa") -> tuple[DemoTenant, GraphQLClient, str, str]:
    """A new demo partner whose customers have a primary card:
    (tenant, owner's client, Acme's product, Globex's product)."""
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    acme, globex = (c.id for c in tenant.customers)
    await add_card(client, acme, make_primary=True)
    await add_card(client, globex, globex_card, make_primary=True)
    return tenant, client, (await only_product(client, acme))["id"], (await only_product(client, globex))["id"]


async def test_a_full_run_buys_every_row_and_prints_a_summary(gateway: GatewayServer, tmp_path: Path) -> None:
    tenant, client, acme_product, globex_product = await shop(gateway)
    acme, globex = (c.id for c in tenant.customers)
    orders = write_csv(
        tmp_path / "june.csv",
        [
            (acme, acme_product, "", "", 3),
            (globex, globex_product, "", "", 2),
            (acme, "", STORAGE_PLAN, "yearly", 5),
        ],
    )

    run = await run_script(orders, token=tenant.tokens["PARTNER_FINANCE_ADMIN"], url=f"{gateway.url}/graphql")

    assert run.code == 0, run
    assert await licenses(client, acme) == {"plan_backup_professional": 13, STORAGE_PLAN: 5}
    assert await licenses(client, globex) == {"plan_backup_essentials": 27}
    made = await rows(gateway, Order, col(Order.customer_id).in_([acme, globex]))
    assert sorted(o.status for o in made) == ["SUCCEEDED"] * 3
    assert await charges(gateway, acme) + await charges(gateway, globex) == 3
    assert run.stdout.split()[:5] == ["line", "customer", "what", "order", "status"]
    table = summary_rows(run.stdout)
    for line, order in zip((2, 3, 4), sorted(made, key=lambda o: o.created_at), strict=True):
        assert order.id in table[line] and "SUCCEEDED" in table[line], table[line]
    assert run.stdout.splitlines()[-1] == "3 of 3 succeeded"
    assert tenant.tokens["PARTNER_FINANCE_ADMIN"] not in run.stdout + run.stderr


async def test_running_the_same_file_again_charges_nothing_twice(gateway: GatewayServer, tmp_path: Path) -> None:
    tenant, client, acme_product, globex_product = await shop(gateway)
    acme, globex = (c.id for c in tenant.customers)
    token, url = tenant.tokens["PARTNER_OWNER"], f"{gateway.url}/graphql"
    lines: list[tuple[object, ...]] = [
        (acme, acme_product, "", "", 2),
        (acme, acme_product, "", "", 2),  # the same purchase twice on purpose: two orders
        (globex, "", STORAGE_PLAN, "MONTHLY", 4),
    ]
    orders = write_csv(tmp_path / "batch.csv", lines)
    first = await run_script(orders, "--json", token=token, url=url)
    assert first.code == 0, first
    bought = await licenses(client, acme), await licenses(client, globex)
    placed = await orders_of(gateway, acme) | await orders_of(gateway, globex)

    again = await run_script(orders, "--json", token=token, url=url)
    # A new line at the top moves every other line down: still no repeat.
    write_csv(orders, [(globex, globex_product, "", "", 1), *lines])
    extended = await run_script(orders, "--json", token=token, url=url)

    assert again.code == 0, again
    assert [r["orderId"] for r in again.results()] == [r["orderId"] for r in first.results()]
    assert [r["placedAt"] for r in again.results()] == [r["placedAt"] for r in first.results()]
    assert [r["status"] for r in again.results()] == ["SUCCEEDED"] * 3
    assert len(placed) == 3
    assert bought == ({"plan_backup_professional": 14}, {"plan_backup_essentials": 25, STORAGE_PLAN: 4})
    assert extended.code == 0, extended
    assert [r["orderId"] for r in extended.results()][1:] == [r["orderId"] for r in first.results()]
    assert await orders_of(gateway, acme) | await orders_of(gateway, globex) == placed | {
        extended.results()[0]["orderId"]
    }
    assert await licenses(client, acme) == {"plan_backup_professional": 14}
    assert await licenses(client, globex) == {"plan_backup_essentials": 26, STORAGE_PLAN: 4}
    assert await charges(gateway, acme) + await charges(gateway, globex) == 4


async def test_a_lost_answer_is_asked_again_and_buys_once(gateway: GatewayServer, tmp_path: Path) -> None:
    tenant, client, acme_product, _ = await shop(gateway)
    acme = tenant.customers[0].id
    orders = write_csv(tmp_path / "lossy.csv", [(acme, acme_product, "", "", 4), (acme, acme_product, "", "", 1)])

    async with lossy_proxy(gateway.port, marker=b"buyLicenses") as proxy:
        run = await run_script(orders, "--json", token=tenant.tokens["PARTNER_OWNER"], url=proxy.url)

    assert proxy.dropped == 1, "the proxy lost no answer: the test proved nothing"
    assert run.code == 0, run
    assert "RemoteProtocolError" in run.stderr and "trying again" in run.stderr
    results = run.results()
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert await orders_of(gateway, acme) == {r["orderId"] for r in results}
    assert await charges(gateway, acme) == 2
    assert await licenses(client, acme) == {"plan_backup_professional": 15}


async def test_a_websocket_lost_while_waiting_is_reopened(tmp_path: Path) -> None:
    # A payment that takes 1.5 s to confirm, so the script is still waiting
    # when its socket is cut.
    async with serve_gateway(sqlite_settings(tmp_path, sandbox_confirm_delay_ms=1500)) as gateway:
        tenant, client, acme_product, _ = await shop(gateway)
        acme = tenant.customers[0].id
        orders = write_csv(tmp_path / "cut.csv", [(acme, acme_product, "", "", 2)])

        # Cut the socket as soon as it has told the script the order is PROCESSING.
        async with lossy_proxy(gateway.port, marker=b"no request has this", ws_cut_marker=b"PROCESSING") as proxy:
            run = await run_script(orders, "--json", token=tenant.tokens["PARTNER_OWNER"], url=proxy.url)

        assert proxy.cut == 1, "the proxy cut no WebSocket: the test proved nothing"
        assert run.code == 0, run
        assert "confirmation: connection lost" in run.stderr
        assert "asking for its status instead" not in run.stderr  # settled through the subscription
        assert [r["status"] for r in run.results()] == ["SUCCEEDED"]
        assert await licenses(client, acme) == {"plan_backup_professional": 12}


async def test_a_declined_row_fails_the_run_and_the_others_are_still_bought(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    tenant, client, acme_product, globex_product = await shop(gateway, globex_card="pm_card_chargeCustomerFail")
    acme, globex = (c.id for c in tenant.customers)
    orders = write_csv(
        tmp_path / "declined.csv",
        [(acme, acme_product, "", "", 1), (globex, globex_product, "", "", 2), (acme, acme_product, "", "", 4)],
    )

    run = await run_script(orders, token=tenant.tokens["PARTNER_OWNER"], url=f"{gateway.url}/graphql")

    assert run.code == 1, run
    table = summary_rows(run.stdout)
    assert "SUCCEEDED" in table[2] and "SUCCEEDED" in table[4]
    assert "FAILED" in table[3] and "CARD_DECLINED: Your card was declined." in table[3]
    assert run.stdout.splitlines()[-1] == "2 of 3 succeeded, 1 failed"
    assert "Traceback" not in run.stderr
    assert await licenses(client, acme) == {"plan_backup_professional": 15}
    assert await licenses(client, globex) == {"plan_backup_essentials": 25}


async def test_a_file_with_a_bad_line_buys_nothing(gateway: GatewayServer, tmp_path: Path) -> None:
    tenant, _, acme_product, _ = await shop(gateway)
    acme = tenant.customers[0].id
    orders = write_csv(tmp_path / "typo.csv", [(acme, acme_product, "", "", 2), (acme, acme_product, "", "", "2O")])

    run = await run_script(orders, token=tenant.tokens["PARTNER_OWNER"], url=f"{gateway.url}/graphql")

    assert run.code == 2, run
    assert f"{orders}:3: quantity must be a whole number of at least 1, got '2O'" in run.stderr
    assert "nothing was bought" in run.stderr and "Traceback" not in run.stderr
    assert await orders_of(gateway, acme) == set()


async def test_a_token_that_may_not_buy_stops_before_the_first_row(gateway: GatewayServer, tmp_path: Path) -> None:
    tenant, _, acme_product, _ = await shop(gateway)
    acme = tenant.customers[0].id
    orders = write_csv(tmp_path / "admin.csv", [(acme, acme_product, "", "", 1)])
    url = f"{gateway.url}/graphql"

    admin = await run_script(orders, token=tenant.tokens["PARTNER_ADMIN"], url=url)
    unknown = await run_script(orders, token="pbg_not-a-token", url=url)
    missing = await run_script(orders, token=None, url=url)

    assert (admin.code, unknown.code, missing.code) == (2, 2, 2)
    assert "is PARTNER_ADMIN, which may not buy" in admin.stderr
    assert "the gateway refused the token in PARTNER_BILLING_TOKEN (UNAUTHENTICATED" in unknown.stderr
    assert "set PARTNER_BILLING_TOKEN" in missing.stderr
    assert not any("Traceback" in run.stderr for run in (admin, unknown, missing))
    assert await orders_of(gateway, acme) == set()


async def _data_once_allowed(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The test's own setup against a rate-limited gateway: wait as told."""
    for _ in range(20):
        response = await client.post(query, variables)
        if response.status_code != 429:
            body: dict[str, Any] = response.json()
            assert response.status_code == 200 and not body.get("errors"), body
            return body
        await asyncio.sleep(float(response.headers["retry-after"]))
    raise AssertionError("still rate limited after 20 waits")


async def test_a_rate_limited_run_waits_as_told_and_completes(tmp_path: Path) -> None:
    add_card_document = """
    mutation($c: ID!) { addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa",
      makePrimary: true}) { userErrors { code } } }"""
    products_document = "query($c: ID!) { products(actingCustomer: $c) { id totalLicenses } }"
    settings = sqlite_settings(tmp_path, rate_limit=RateLimit(requests=2, per_seconds=1.0))
    async with serve_gateway(settings) as gateway:
        tenant = await gateway.tenant()
        owner = gateway.client(tenant.tokens["PARTNER_OWNER"])
        acme = tenant.customers[0].id
        await _data_once_allowed(owner, add_card_document, {"c": acme})
        product = (await _data_once_allowed(owner, products_document, {"c": acme}))["data"]["products"][0]["id"]
        orders = write_csv(tmp_path / "many.csv", [(acme, product, "", "", n) for n in range(1, 6)])

        run = await run_script(
            orders, "--json", token=tenant.tokens["PARTNER_FINANCE_ADMIN"], url=f"{gateway.url}/graphql"
        )

        after = await _data_once_allowed(owner, products_document, {"c": acme})
        assert run.code == 0, run
        # The gateway said 1 s (Retry-After over HTTP, extensions.retryAfter over
        # WebSocket, where subscribing counts too): the script waited that, not
        # its own backoff.
        told = ("HTTP 429 RATE_LIMITED; trying again in 1.0 s", "rate limited; subscribing again in 1.0 s")
        assert any(wait in run.stderr for wait in told), run.stderr
        assert [r["status"] for r in run.results()] == ["SUCCEEDED"] * 5
        assert after["data"]["products"][0]["totalLicenses"] == 10 + 1 + 2 + 3 + 4 + 5
        assert await charges(gateway, acme) == 5

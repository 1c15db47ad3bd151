"""``GET /metrics`` of a real gateway process after real operations: each
count is exact, because the process is new and only this test talks to it."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import ADD_PAYMENT_METHOD, BUY_LICENSES, PRODUCTS
from tests.observability.support import observed_gateway

METRICS_TOKEN = "metrics-secret-9f2c"
CONFIRMATION = """
subscription($c: ID!, $o: ID!) { paymentConfirmation(actingCustomer: $c, orderId: $o) { status } }"""
ORDER = "query($c: ID!, $id: ID!) { order(actingCustomer: $c, id: $id) { id } }"


async def test_metrics_count_operations_orders_subscriptions_and_webhooks(tmp_path: Path) -> None:
    with observed_gateway(tmp_path, {"METRICS_TOKEN": METRICS_TOKEN}) as gateway:
        # Given the token is required
        async with gateway.process.http() as http:
            assert (await http.get("/metrics")).status_code == 401
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer metrics-secret-9f2d"})
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"].startswith("Bearer")
            assert (await http.get("/metrics", headers={"Authorization": METRICS_TOKEN})).status_code == 401
            lower_case = await http.get("/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"})
            assert lower_case.status_code == 200
        before = await gateway.scrape(METRICS_TOKEN)
        assert before.value("pbg_graphql_operations_total", type="query", outcome="ok") == 0
        assert before.value("pbg_orders_total", kind="LICENSE_PURCHASE", status="SUCCEEDED") == 0
        assert ("pbg_orders_total", frozenset({("kind", "STORAGE_UPGRADE"), ("status", "FAILED")})) in before.samples

        tenant = await gateway.tenant()
        customer = tenant.customers[0].id
        async with gateway.process.client(tenant.tokens["PARTNER_OWNER"]) as client:
            # When: two queries that succeed, one refused, one malformed document,
            product_id = (await client.data(PRODUCTS, {"c": customer}))["products"][0]["id"]
            await client.data("{ viewer { id } }")
            assert await client.error_code(ORDER, {"c": customer, "id": "ord_nothing"}) == "NOT_FOUND"
            assert await client.error_code("{ viewer { ") == "BAD_USER_INPUT"
            # two mutations, and a purchase watched to its end over WebSocket,
            card = {"paymentMethodToken": "pm_card_visa", "makePrimary": True}
            added = await client.data(ADD_PAYMENT_METHOD, {"c": customer, "input": card})
            assert added["addPaymentMethod"]["userErrors"] == []
            bought = await client.data(BUY_LICENSES, {"c": customer, "input": {"productId": product_id, "quantity": 2}})
            order_id = bought["buyLicenses"]["order"]["id"]
            async with gateway.process.websocket(tenant.tokens["PARTNER_OWNER"]) as ws:
                op = await ws.subscribe(CONFIRMATION, {"c": customer, "o": order_id})
                await ws.next_data(op)  # the subscription runs
                during = await gateway.scrape(METRICS_TOKEN)
                statuses = []
                while (message := await ws.receive(timeout=10))["type"] != "complete":
                    statuses.append(message["payload"]["data"]["paymentConfirmation"]["status"])
                assert statuses[-1] == "SUCCEEDED", statuses
            # and a webhook delivery to a gateway without Stripe.
            assert (await client.http.post("/webhooks/stripe", content=b"{}")).status_code == 404

        # Then
        after = await gateway.scrape(METRICS_TOKEN)
        assert during.value("pbg_subscriptions_active") == 1
        assert after.value("pbg_subscriptions_active") == 0
        assert after.value("pbg_graphql_operations_total", type="query", outcome="ok") == 2
        assert after.value("pbg_graphql_operations_total", type="query", outcome="NOT_FOUND") == 1
        assert after.value("pbg_graphql_operations_total", type="unknown", outcome="BAD_USER_INPUT") == 1
        assert after.value("pbg_graphql_operations_total", type="mutation", outcome="ok") == 2
        assert after.value("pbg_graphql_operations_total", type="subscription", outcome="ok") == 1
        assert after.value("pbg_graphql_operation_seconds_count", type="query") == 3
        assert after.value("pbg_graphql_operation_seconds_count", type="mutation") == 2
        assert 0 < after.value("pbg_graphql_operation_seconds_sum", type="mutation") < 30
        assert after.value("pbg_graphql_operation_seconds_bucket", type="query", le="+Inf") == 3
        assert after.value("pbg_orders_total", kind="LICENSE_PURCHASE", status="PENDING") == 1
        assert after.value("pbg_orders_total", kind="LICENSE_PURCHASE", status="SUCCEEDED") == 1
        assert after.value("pbg_orders_total", kind="LICENSE_PURCHASE", status="FAILED") == 0
        assert after.value("pbg_webhook_deliveries_total", outcome="disabled") == 1
        assert after.value("process_resident_memory_bytes") > 0


async def test_metrics_are_open_without_a_token(tmp_path: Path) -> None:
    with observed_gateway(tmp_path) as gateway:
        scrape = await gateway.scrape()
        assert scrape.value("pbg_subscriptions_active") == 0
        assert ("pbg_webhook_deliveries_total", frozenset({("outcome", "processed")})) in scrape.samples

"""The database unreachable: GraphQL answers 503 with an INTERNAL error that
says so and is marked retryable (never a plain-text 500, never a traceback
in the log), a WebSocket is told to come back later, and /readyz says 503."""

from __future__ import annotations

import json
import logging

import pytest
import websockets

from billing.onboarding import seed_demo
from tests.scale.conftest import PostgresServer, pg_settings
from tests.support.gateway import serve_gateway

pytestmark = pytest.mark.postgres

VIEWER = "{ viewer { id } }"
ADD = """
mutation($c: ID!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa"}) { userErrors { code } }
}"""


async def test_database_down_is_a_retryable_503(postgres: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:
    name = postgres.create_database()
    try:
        async with serve_gateway(pg_settings(postgres.url(name))) as gateway:
            tenant = await seed_demo(gateway.runtime.db)
            token, customer = tenant.tokens["PARTNER_OWNER"], tenant.customers[0].id
            assert (await gateway.client(token).data(VIEWER))["viewer"]["id"]
            caplog.set_level(logging.WARNING)
            postgres.drop_database(name)  # closes the gateway's connections too

            for query, variables in ((VIEWER, {}), (ADD, {"c": customer})):
                response = await gateway.client(token).post(query, variables)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/json")
                assert int(response.headers["retry-after"]) >= 1
                (error,) = response.json()["errors"]
                assert error["extensions"]["code"] == "INTERNAL"
                assert error["extensions"]["retryable"] is True
                assert "database is unavailable" in error["message"]

            ws = await websockets.connect(
                f"ws://127.0.0.1:{gateway.port}/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            )
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

            readyz = await gateway.http.get("/readyz")
            assert readyz.status_code == 503 and readyz.json()["database"] is False
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "Traceback" not in text and not [r for r in caplog.records if r.exc_info], text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], text
    finally:
        postgres.drop_database(name)

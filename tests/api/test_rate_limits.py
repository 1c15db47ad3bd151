"""RATE_LIMIT cannot be sidestepped: one budget per signed-in token, however
the header is spelt, whatever else comes from its address; every root field
of a mutation counts; WebSocket operations count too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from settings import RateLimit
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, serve_gateway

VIEWER = {"query": "{ viewer { id } }"}


def limited(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == int(response.headers["retry-after"]) >= 1
    return True


async def post(gateway: GatewayServer, body: dict[str, Any], authorization: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return await gateway.http.post("/graphql", json=body, headers=headers)


async def test_a_token_has_one_budget_however_the_header_is_spelt(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, rate_limit=RateLimit(3, 60.0))) as gateway:
        token = (await gateway.tenant()).tokens["PARTNER_OWNER"]
        spellings = [f"Bearer {token}", f"bearer   {token}", f"Bearer\t{token}", f"BEARER  {token}"]
        answers = [await post(gateway, VIEWER, spelling) for spelling in spellings]

        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        assert limited(answers[3])


async def test_made_up_tokens_do_not_lock_out_real_ones_from_the_same_address(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, rate_limit=RateLimit(3, 60.0))) as gateway:
        token = (await gateway.tenant()).tokens["PARTNER_OWNER"]
        junk = [await post(gateway, VIEWER, f"Bearer pbg_{n:043d}") for n in range(6)]

        assert [a.status_code for a in junk[:3]] == [200, 200, 200]  # UNAUTHENTICATED, counted per address
        assert all(limited(a) for a in junk[3:])
        real = await post(gateway, VIEWER, f"Bearer {token}")
        assert real.status_code == 200 and real.json()["data"]["viewer"]["id"]


async def test_every_root_field_of_a_mutation_counts(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, rate_limit=RateLimit(10, 3600.0))) as gateway:
        tenant = await gateway.tenant()
        acme = tenant.customers[0].id
        bearer = f"Bearer {tenant.tokens['PARTNER_OWNER']}"

        def aliased(n: int) -> dict[str, str]:
            fields = " ".join(
                f'r{i}: removePaymentMethod(actingCustomer: "{acme}", paymentMethodId: "pm_nope") '
                "{ userErrors { code } }"
                for i in range(n)
            )
            return {"query": f"mutation {{ {fields} }}"}

        eleven = await post(gateway, aliased(11), bearer)
        assert limited(eleven)  # 11 root fields: over a budget of 10, nothing ran
        ten = await post(gateway, aliased(10), bearer)
        assert ten.status_code == 200
        assert len(ten.json()["data"]) == 10
        assert limited(await post(gateway, VIEWER, bearer))  # the ten spent the budget


async def test_websocket_operations_count_too(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, rate_limit=RateLimit(3, 3600.0))) as gateway:
        tenant = await gateway.tenant()
        token = tenant.tokens["PARTNER_OWNER"]
        async with gateway.websocket(token) as ws:
            for _ in range(3):
                op = await ws.subscribe("subscription { orderStatusChanged { status } }")
            refused = await ws.subscribe("subscription { orderStatusChanged { status } }")
            message = await ws.receive()
            while message.get("id") != refused:
                message = await ws.receive()
            assert message["type"] == "error", message
            (error,) = message["payload"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["retryAfter"] >= 1
            assert op  # the three before it were accepted
        # ... and the same budget is the token's over HTTP
        assert limited(await post(gateway, VIEWER, f"Bearer {token}"))

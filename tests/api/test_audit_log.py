"""``auditLog``: every billing mutation, refusal, order status change and
token change of a partner, newest first, for its owners only, through the API."""

from __future__ import annotations

import json
from typing import Any

import graphql

from billing import tokens
from tests.api.helpers import (  # noqa: F401 - fixtures
    ADD_PAYMENT_METHOD,
    SHARED_LOOP,
    add_card,
    buy,
    buy_and_settle,
    codes,
    error_codes,
    module_gateway,
    only_product,
    shared_gateway,
    upgrade,
)
from tests.support.gateway import GatewayServer, GraphQLClient

pytestmark = SHARED_LOOP

AUDIT_LOG = """
query($c: ID, $first: Int, $after: String) {
  auditLog(actingCustomer: $c, first: $first, after: $after) {
    edges { cursor node { id occurredAt actor { email role } customer { id name } action targetId outcome } }
    pageInfo { hasNextPage endCursor }
  }
}"""
VIEWER = "{ viewer { id email } }"
SET_PRIMARY = """
mutation($c: ID!, $pm: ID!) {
  setPrimaryPaymentMethod(actingCustomer: $c, paymentMethodId: $pm) { userErrors { code } }
}"""
REMOVE = """
mutation($c: ID!, $pm: ID!) { removePaymentMethod(actingCustomer: $c, paymentMethodId: $pm) { userErrors { code } } }
"""


async def _log(client: GraphQLClient, customer: str | None = None, first: int = 100) -> list[dict[str, Any]]:
    data = await client.data(AUDIT_LOG, {"c": customer, "first": first})
    return [edge["node"] for edge in data["auditLog"]["edges"]]


async def _error_code(client: GraphQLClient, variables: dict[str, Any]) -> str:
    """The first error's code, the variables sent as escaped JSON (so lone surrogates survive the trip)."""
    headers = {"Authorization": f"Bearer {client.token}", "content-type": "application/json"}
    body = json.dumps({"query": AUDIT_LOG, "variables": variables}).encode()
    response = await client.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


def _row(entry: dict[str, Any]) -> tuple[Any, ...]:
    actor = entry["actor"]
    return (
        (actor["email"], actor["role"]) if actor else None,
        entry["customer"]["id"] if entry["customer"] else None,
        entry["action"],
        entry["targetId"],
        entry["outcome"],
    )


async def test_every_kind_of_action_appears_newest_first(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme, globex = tenant.customers
    owner = gateway.client(tenant.tokens["PARTNER_OWNER"])
    finance = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
    admin = gateway.client(tenant.tokens["PARTNER_ADMIN"])
    finance_user = (await finance.data(VIEWER))["viewer"]
    admin_email = (await admin.data(VIEWER))["viewer"]["email"]
    as_finance = (finance_user["email"], "PARTNER_FINANCE_ADMIN")
    product = await only_product(finance, acme.id)

    visa = await add_card(finance, acme.id, "pm_card_visa")
    refused_card = (
        await finance.data(ADD_PAYMENT_METHOD, {"c": acme.id, "input": {"paymentMethodToken": "4242 4242 4242 4242"}})
    )["addPaymentMethod"]
    assert codes(refused_card) == ["INVALID_PAYMENT_METHOD_TOKEN"]
    amex = await add_card(finance, acme.id, "pm_card_amex")
    assert (await finance.data(SET_PRIMARY, {"c": acme.id, "pm": amex["id"]}))["setPrimaryPaymentMethod"][
        "userErrors"
    ] == []
    paid = await buy_and_settle(finance, acme.id, product["id"], 2)
    assert codes(await buy(finance, acme.id, product["id"], 0)) == ["INVALID_QUANTITY"]
    assert error_codes(await admin.execute(REMOVE, {"c": acme.id, "pm": visa["id"]})) == ["FORBIDDEN"]
    assert (await finance.data(REMOVE, {"c": acme.id, "pm": visa["id"]}))["removePaymentMethod"]["userErrors"] == []
    declining = await add_card(finance, globex.id, "pm_card_chargeCustomerFail")
    declined = await upgrade(finance, globex.id, "plan_storage_1tb", 1, paymentMethodId=declining["id"])
    assert codes(declined) == ["CARD_DECLINED"]
    failed = declined["order"]
    async with gateway.runtime.db.orm(write=True) as session:
        issued = await tokens.create_token(session, user_id=finance_user["id"], label="audit")
    async with gateway.runtime.db.orm(write=True) as session:
        await tokens.revoke_token(session, issued.id)

    entries = await _log(owner)

    assert [_row(e) for e in entries] == [
        (None, None, "token.revoked", issued.id, "OK"),
        (None, None, "token.created", issued.id, "OK"),
        (None, globex.id, "order.status_changed", failed["id"], "FAILED"),
        (as_finance, globex.id, "order.storage_upgrade", failed["id"], "PLACED"),
        (as_finance, globex.id, "payment_method.add", declining["id"], "OK"),
        (as_finance, acme.id, "payment_method.remove", visa["id"], "OK"),
        ((admin_email, "PARTNER_ADMIN"), acme.id, "payment_method.remove", None, "FORBIDDEN"),
        (as_finance, acme.id, "order.license_purchase", None, "INVALID_QUANTITY"),
        (None, acme.id, "order.status_changed", paid["id"], "SUCCEEDED"),
        (None, acme.id, "order.status_changed", paid["id"], "PROCESSING"),
        (as_finance, acme.id, "order.license_purchase", paid["id"], "PLACED"),
        (as_finance, acme.id, "payment_method.set_primary", amex["id"], "OK"),
        (as_finance, acme.id, "payment_method.add", amex["id"], "OK"),
        (as_finance, acme.id, "payment_method.add", None, "INVALID_PAYMENT_METHOD_TOKEN"),
        (as_finance, acme.id, "payment_method.add", visa["id"], "OK"),
    ]
    times = [e["occurredAt"] for e in entries]
    assert times == sorted(times, reverse=True)
    assert entries[-1]["customer"] == {"id": acme.id, "name": "Acme Dental"}
    # One customer's trail: its entries only, none partner-wide.
    assert [_row(e) for e in await _log(owner, globex.id)] == [_row(e) for e in entries[2:5]]


async def test_roles_and_tenancy(gateway: GatewayServer) -> None:
    tenant, other = await gateway.tenant(), await gateway.tenant()
    acme = tenant.customers[0]
    await add_card(gateway.client(tenant.tokens["PARTNER_OWNER"]), acme.id)
    await add_card(gateway.client(other.tokens["PARTNER_OWNER"]), other.customers[0].id)
    stranger = gateway.client(other.tokens["PARTNER_OWNER"])

    for role in ("PARTNER_FINANCE_ADMIN", "PARTNER_ADMIN"):
        client = gateway.client(tenant.tokens[role])
        for customer in (None, acme.id, other.customers[0].id, "x\u0000y"):
            assert await _error_code(client, {"c": customer}) == "FORBIDDEN", (role, customer)
    assert await gateway.client().error_code(AUDIT_LOG) == "UNAUTHENTICATED"

    theirs = await _log(stranger)
    assert theirs and all(e["customer"] is None or e["customer"]["id"] == other.customers[0].id for e in theirs)
    assert acme.id not in str(theirs)
    for customer in (acme.id, "cst_nope", "x\u0000y", "\ud800", "y" * 500):
        assert await _error_code(stranger, {"c": customer}) == "NOT_FOUND", customer


async def test_pages_are_newest_first_with_opaque_cursors_and_ids(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    owner = gateway.client(tenant.tokens["PARTNER_OWNER"])
    for customer in tenant.customers:
        for token in ("pm_card_visa", "pm_card_amex", "pm_card_mastercard"):
            await add_card(owner, customer.id, token)
    everything = await _log(owner)
    assert len(everything) == 6

    pages: list[list[dict[str, Any]]] = []
    after = None
    while True:
        data = (await owner.data(AUDIT_LOG, {"first": 4, "after": after}))["auditLog"]
        pages.append([edge["node"] for edge in data["edges"]])
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert [len(page) for page in pages] == [4, 2]
    assert [e for page in pages for e in page] == everything
    ids = [e["id"] for e in everything]
    assert len(set(ids)) == 6 and not any(i.isdigit() for i in ids)

    other = await gateway.tenant()
    stranger = gateway.client(other.tokens["PARTNER_OWNER"])
    for cursor in (after, "garbage", "MQ", ""):
        assert await stranger.error_code(AUDIT_LOG, {"after": cursor}) == "BAD_USER_INPUT", cursor
    assert await owner.error_code(AUDIT_LOG, {"first": -1}) == "BAD_USER_INPUT"


async def test_a_page_costs_a_constant_number_of_statements(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    owner = gateway.client(tenant.tokens["PARTNER_OWNER"])
    acme = tenant.customers[0].id
    for _ in range(3):
        for token in ("pm_card_visa", "pm_card_amex"):
            await add_card(owner, acme, token)
            await add_card(owner, tenant.customers[1].id, token)
    db = gateway.runtime.db

    async def cost(first: int, customer: str | None = None) -> int:
        before = db.statements
        entries = await _log(owner, customer, first=first)
        assert len(entries) == min(first, 12 if customer is None else 6)
        return db.statements - before

    # The token lookup and one page read; the customer check on top when filtered.
    assert await cost(1) == await cost(50) == 2
    assert await cost(1, acme) == await cost(50, acme) == 3


async def test_nothing_in_the_api_changes_or_deletes_an_entry(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    data = await gateway.client(tenant.tokens["PARTNER_OWNER"]).data(graphql.get_introspection_query())
    schema = graphql.build_client_schema(data)  # type: ignore[arg-type]
    assert schema.mutation_type is not None
    for name, field in schema.mutation_type.fields.items():
        assert "audit" not in name.lower()
        named = graphql.get_named_type(field.type)
        assert named is not None and "Audit" not in named.name
    assert "auditLog" in schema.query_type.fields if schema.query_type else False

"""``node(id:)`` (Relay's refetching) under the contract's rules, Relay's full
``PageInfo``, and ``DateTime`` as its specification writes it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from billing.onboarding import DemoTenant
from tests.api.helpers import (  # noqa: F401 - fixtures
    SHARED_LOOP,
    add_card,
    buy_and_settle,
    error_codes,
    module_gateway,
    only_product,
    shared_gateway,
)
from tests.support.gateway import GatewayServer

pytestmark = SHARED_LOOP

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Viewer { email role }
    ... on Partner { name }
    ... on Customer { name }
    ... on Plan { name kind }
    ... on Product { totalLicenses plan { id } }
    ... on Order { status createdAt }
    ... on PaymentMethod { last4 }
  }
}"""
VIEWER = "{ viewer { id partner { id } } }"
CUSTOMERS = """
query Customers($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
ORDERS = """
query Orders($c: ID!) {
  orders(actingCustomer: $c) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
}"""
# https://scalars.graphql.org/andimarek/date-time, as the gateway writes it.
DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class Ids:
    """Every kind of id one tenant can see."""

    user: str
    partner: str
    customer: str
    product: str
    order: str
    payment_method: str


async def ids_of(gateway: GatewayServer, tenant: DemoTenant) -> Ids:
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    customer = tenant.customers[0].id
    viewer = (await client.data(VIEWER))["viewer"]
    card = await add_card(client, customer, make_primary=True)
    product = await only_product(client, customer)
    order = await buy_and_settle(client, customer, product["id"], 1)
    return Ids(viewer["id"], viewer["partner"]["id"], customer, product["id"], order["id"], card["id"])


async def node(gateway: GatewayServer, token: str | None, id: str) -> dict[str, Any]:
    return await gateway.client(token).execute(NODE, {"id": id})


async def test_node_fetches_every_kind_of_object_again(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    ids = await ids_of(gateway, tenant)
    owner = tenant.tokens["PARTNER_OWNER"]

    found = {name: (await node(gateway, owner, id))["data"]["node"] for name, id in vars(ids).items()}
    plan = (await node(gateway, owner, "plan_backup_essentials"))["data"]["node"]

    assert found["user"] == {
        "__typename": "Viewer",
        "id": ids.user,
        "email": found["user"]["email"],
        "role": "PARTNER_OWNER",
    }
    assert found["partner"] == {"__typename": "Partner", "id": ids.partner, "name": tenant.partner.name}
    assert found["customer"] == {"__typename": "Customer", "id": ids.customer, "name": tenant.customers[0].name}
    held = await only_product(gateway.client(owner), ids.customer)  # as the products query shows it
    assert found["product"] == {
        "__typename": "Product",
        "id": ids.product,
        "totalLicenses": held["totalLicenses"],
        "plan": {"id": held["plan"]["id"]},
    }
    assert (found["order"]["__typename"], found["order"]["status"]) == ("Order", "SUCCEEDED")
    assert DATE_TIME.fullmatch(found["order"]["createdAt"]), found["order"]
    assert (found["payment_method"]["__typename"], found["payment_method"]["last4"]) == ("PaymentMethod", "4242")
    assert plan == {"__typename": "Plan", "id": "plan_backup_essentials", "name": "Backup Essentials", "kind": "BACKUP"}


async def test_node_shows_nothing_of_another_tenant_nor_of_unknown_ids(gateway: GatewayServer) -> None:
    ours, theirs = await gateway.tenant(), await gateway.tenant()
    their_ids = await ids_of(gateway, theirs)
    owner = ours.tokens["PARTNER_OWNER"]
    unknown = [
        "cst_nothing",
        "ord_nothing",
        "pm_nothing",
        "prd_nothing",
        "plan_nothing",
        "usr_x",
        "zzz_1",
        "",
        "x" * 300,
    ]

    for id in [*vars(their_ids).values(), *unknown]:
        body = await node(gateway, owner, id)
        assert body["data"] == {"node": None}, (id, body)
        assert error_codes(body) == ["NOT_FOUND"], (id, body)


async def test_node_applies_the_role_rules(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    ids = await ids_of(gateway, tenant)
    admin = tenant.tokens["PARTNER_ADMIN"]

    # Billing objects need a billing role, whether or not the id exists.
    for id in (ids.order, ids.payment_method, "ord_nothing"):
        assert error_codes(await node(gateway, admin, id)) == ["FORBIDDEN"], id
    for id in (ids.customer, ids.product, ids.partner):
        assert (await node(gateway, admin, id))["data"]["node"]["id"] == id
    assert error_codes(await node(gateway, None, ids.customer)) == ["UNAUTHENTICATED"]


async def test_page_info_has_relays_full_shape(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()  # two customers
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])

    first = (await client.data(CUSTOMERS, {"first": 1}))["customers"]
    second = (await client.data(CUSTOMERS, {"first": 1, "after": first["pageInfo"]["endCursor"]}))["customers"]
    empty = (await client.data(ORDERS, {"c": tenant.customers[1].id}))["orders"]

    [edge] = first["edges"]
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": edge["cursor"],
        "endCursor": edge["cursor"],
    }
    [edge] = second["edges"]
    assert second["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": edge["cursor"],
        "endCursor": edge["cursor"],
    }
    assert empty["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None}

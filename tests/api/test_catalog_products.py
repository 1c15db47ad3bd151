"""Read-only queries every role may make: viewer, customers, catalog, products."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from billing.onboarding import create_customer
from models import User
from tests.api.helpers import (  # noqa: F401 - fixtures
    PRODUCTS,
    ROLES,
    SHARED_LOOP,
    error_codes,
    module_gateway,
    rows,
    set_period,
    shared_gateway,
)
from tests.support.gateway import GatewayServer

pytestmark = SHARED_LOOP


VIEWER = "{ viewer { id email role partner { id name } } }"
CUSTOMERS = """
query Customers($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CATALOG = """
query Catalog($c: ID!) {
  catalog(actingCustomer: $c) {
    id name kind storageGb
    monthly: price(interval: MONTHLY) { amount minorUnits currency }
    yearly: price(interval: YEARLY) { amount minorUnits currency }
  }
}
"""

# id, name, kind, storageGb, monthly minor, yearly minor, monthly amount, yearly amount
EXPECTED_CATALOG = [
    ("plan_backup_essentials", "Backup Essentials", "BACKUP", None, 400, 4000, "4.00", "40.00"),
    ("plan_backup_professional", "Backup Professional", "BACKUP", None, 750, 7500, "7.50", "75.00"),
    ("plan_backup_enterprise", "Backup Enterprise", "BACKUP", None, 1200, 12000, "12.00", "120.00"),
    ("plan_storage_250gb", "Cloud Storage 250 GB", "CLOUD_STORAGE", 250, 250, 2500, "2.50", "25.00"),
    ("plan_storage_1tb", "Cloud Storage 1 TB", "CLOUD_STORAGE", 1024, 800, 8000, "8.00", "80.00"),
    ("plan_storage_5tb", "Cloud Storage 5 TB", "CLOUD_STORAGE", 5120, 3000, 30000, "30.00", "300.00"),
]

EMAIL_LOCAL_PART = {"PARTNER_OWNER": "owner", "PARTNER_FINANCE_ADMIN": "finance-admin", "PARTNER_ADMIN": "admin"}


def _cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


# -- viewer -----------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_viewer_describes_the_tokens_user_and_partner(gateway: GatewayServer, role: str) -> None:
    tenant = await gateway.tenant()
    suffix = tenant.partner.name.removeprefix("Demo MSP ")
    expected_email = f"{EMAIL_LOCAL_PART[role]}@demo-{suffix}.example"
    (user,) = await rows(gateway, User, User.email == expected_email)

    data = await gateway.client(tenant.tokens[role]).data(VIEWER)

    assert data["viewer"] == {
        "id": user.id,
        "email": expected_email,
        "role": role,
        "partner": {"id": tenant.partner.id, "name": tenant.partner.name},
    }


# -- customers --------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_customers_lists_only_the_callers_partners_customers_by_name(gateway: GatewayServer, role: str) -> None:
    tenant = await gateway.tenant()
    await gateway.tenant()  # another partner, whose customers must not show
    acme, globex = tenant.customers

    data = await gateway.client(tenant.tokens[role]).data(CUSTOMERS)

    nodes = [edge["node"] for edge in data["customers"]["edges"]]
    assert nodes == [{"id": acme.id, "name": "Acme Dental"}, {"id": globex.id, "name": "Globex Logistics"}]
    assert data["customers"]["pageInfo"]["hasNextPage"] is False
    assert data["customers"]["pageInfo"]["endCursor"] == data["customers"]["edges"][-1]["cursor"]


async def test_customers_paginates_with_first_and_after(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_ADMIN"])
    acme, globex = tenant.customers

    first_page = (await client.data(CUSTOMERS, {"first": 1}))["customers"]
    assert [e["node"]["id"] for e in first_page["edges"]] == [acme.id]
    assert first_page["pageInfo"] == {"hasNextPage": True, "endCursor": first_page["edges"][0]["cursor"]}

    after_first = first_page["pageInfo"]["endCursor"]
    second_page = (await client.data(CUSTOMERS, {"first": 1, "after": after_first}))["customers"]
    assert [e["node"]["id"] for e in second_page["edges"]] == [globex.id]
    assert second_page["pageInfo"]["hasNextPage"] is False

    past_the_end = (await client.data(CUSTOMERS, {"after": second_page["pageInfo"]["endCursor"]}))["customers"]
    assert past_the_end == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_customers_first_zero_returns_no_edges(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    page = (await gateway.client(tenant.tokens["PARTNER_OWNER"]).data(CUSTOMERS, {"first": 0}))["customers"]
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is True


async def test_customers_page_size_defaults_to_20_and_is_capped_at_100(gateway: GatewayServer) -> None:
    # given a partner with 2 + 103 = 105 customers
    tenant = await gateway.tenant()
    async with gateway.runtime.db.orm(write=True) as session:
        for n in range(103):
            await create_customer(session, partner_id=tenant.partner.id, name=f"Zeta Customer {n:03d}")
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])

    default_page = (await client.data(CUSTOMERS))["customers"]
    assert len(default_page["edges"]) == 20
    assert default_page["pageInfo"]["hasNextPage"] is True

    capped = (await client.data(CUSTOMERS, {"first": 1000}))["customers"]
    assert len(capped["edges"]) == 100
    assert capped["pageInfo"]["hasNextPage"] is True

    rest = (await client.data(CUSTOMERS, {"first": 100, "after": capped["pageInfo"]["endCursor"]}))["customers"]
    assert len(rest["edges"]) == 5
    assert rest["pageInfo"]["hasNextPage"] is False
    all_ids = [e["node"]["id"] for e in capped["edges"] + rest["edges"]]
    assert len(set(all_ids)) == 105
    assert {c.id for c in tenant.customers} <= set(all_ids)


async def test_customers_negative_first_is_bad_user_input(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    body = await gateway.client(tenant.tokens["PARTNER_OWNER"]).execute(CUSTOMERS, {"first": -1})
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]


MALFORMED_CURSORS = [
    "not a cursor",
    "!!!!",
    "",
    _cursor("ord", "2025-01-01T00:00:00+00:00", "ord_x"),  # a cursor of another list
    _cursor("cst", "Acme Dental"),  # wrong arity
    _cursor("cst", "Acme Dental", True),  # wrong value type
    base64.urlsafe_b64encode(b"{}").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
]


async def test_customers_malformed_cursor_is_bad_user_input(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    for cursor in MALFORMED_CURSORS:
        body = await client.execute(CUSTOMERS, {"first": 5, "after": cursor})
        assert body["data"] is None, cursor
        assert error_codes(body) == ["BAD_USER_INPUT"], (cursor, body)


# -- catalog ----------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_catalog_lists_the_six_plans_with_exact_prices(gateway: GatewayServer, role: str) -> None:
    tenant = await gateway.tenant()

    data = await gateway.client(tenant.tokens[role]).data(CATALOG, {"c": tenant.customers[0].id})

    assert data["catalog"] == [
        {
            "id": plan_id,
            "name": name,
            "kind": kind,
            "storageGb": storage,
            "monthly": {"amount": monthly_amount, "minorUnits": monthly, "currency": "USD"},
            "yearly": {"amount": yearly_amount, "minorUnits": yearly, "currency": "USD"},
        }
        for plan_id, name, kind, storage, monthly, yearly, monthly_amount, yearly_amount in EXPECTED_CATALOG
    ]


# -- products ---------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_products_show_licenses_plan_and_the_stored_period(gateway: GatewayServer, role: str) -> None:
    # given periods paid long ago and never renewed since
    tenant = await gateway.tenant()
    acme, globex = tenant.customers
    client = gateway.client(tenant.tokens[role])
    acme_product = (await client.data(PRODUCTS, {"c": acme.id}))["products"][0]
    globex_product = (await client.data(PRODUCTS, {"c": globex.id}))["products"][0]
    await set_period(gateway, acme_product["id"], datetime(2020, 1, 31, 9, 30, tzinfo=UTC))
    await set_period(gateway, globex_product["id"], datetime(2020, 3, 1, tzinfo=UTC))

    acme_products = (await client.data(PRODUCTS, {"c": acme.id}))["products"]
    globex_products = (await client.data(PRODUCTS, {"c": globex.id}))["products"]

    # then each shows the period it paid for: periods no longer move by themselves
    assert acme_products == [
        {
            "id": acme_product["id"],
            "billingInterval": "MONTHLY",
            "totalLicenses": 10,
            "assignedLicenses": 7,
            "availableLicenses": 3,
            "storageGb": None,
            "status": "ACTIVE",
            "currentPeriodStart": "2020-01-31T09:30:00.000Z",
            "currentPeriodEnd": "2020-02-29T09:30:00.000Z",  # a month, clamped to February's last day
            "renewsAt": "2020-02-29T09:30:00.000Z",
            "cancelAtPeriodEnd": False,
            "scheduledLicenses": None,
            "plan": {
                "id": "plan_backup_professional",
                "name": "Backup Professional",
                "kind": "BACKUP",
                "storageGb": None,
            },
        }
    ]
    assert globex_products == [
        {
            "id": globex_product["id"],
            "billingInterval": "YEARLY",
            "totalLicenses": 25,
            "assignedLicenses": 20,
            "availableLicenses": 5,
            "storageGb": None,
            "status": "ACTIVE",
            "currentPeriodStart": "2020-03-01T00:00:00.000Z",
            "currentPeriodEnd": "2021-03-01T00:00:00.000Z",
            "renewsAt": "2021-03-01T00:00:00.000Z",
            "cancelAtPeriodEnd": False,
            "scheduledLicenses": None,
            "plan": {"id": "plan_backup_essentials", "name": "Backup Essentials", "kind": "BACKUP", "storageGb": None},
        }
    ]


async def test_a_seeded_products_paid_period_contains_now(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_ADMIN"])
    now = datetime.now(UTC)
    for customer, interval in zip(tenant.customers, ("MONTHLY", "YEARLY"), strict=True):
        (held,) = (await client.data(PRODUCTS, {"c": customer.id}))["products"]
        start, end = (datetime.fromisoformat(held[k]) for k in ("currentPeriodStart", "currentPeriodEnd"))
        assert held["billingInterval"] == interval
        assert start <= now < end
        assert end - start >= (timedelta(days=28) if interval == "MONTHLY" else timedelta(days=365))


async def test_product_plan_price_resolves(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    query = """
    query($c: ID!) { products(actingCustomer: $c) {
      plan { price(interval: MONTHLY) { amount minorUnits currency } } } }
    """
    data = await gateway.client(tenant.tokens["PARTNER_ADMIN"]).data(query, {"c": tenant.customers[0].id})
    assert data["products"] == [{"plan": {"price": {"amount": "7.50", "minorUnits": 750, "currency": "USD"}}}]

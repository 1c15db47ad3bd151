"""API.md's role table and tenant isolation, for every query and mutation,
plus the audit trail of billing actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col

from billing.onboarding import DemoTenant
from models import ApiToken, AuditEntry, Order, SandboxPayment, User
from tests.api.helpers import (  # noqa: F401 - fixtures
    ADD_PAYMENT_METHOD,
    BILLING_DETAILS,
    BILLING_ROLES,
    BUY_LICENSES,
    CANCEL_PRODUCT,
    LICENSE_SUMMARY,
    ORDER,
    ORDERS,
    PRODUCTS,
    REMOVE_PAYMENT_METHOD,
    RESUME_PRODUCT,
    ROLES,
    SCHEDULE_LICENSE_CHANGE,
    SET_PRIMARY,
    SHARED_LOOP,
    STORAGE_SUMMARY,
    UPGRADE_STORAGE,
    add_card,
    billing_details,
    buy,
    buy_and_settle,
    codes,
    count_rows,
    error_codes,
    module_gateway,
    only_product,
    products,
    rows,
    shared_gateway,
    wait_for_status,
)
from tests.conftest import sqlite_settings
from tests.support.gateway import GatewayServer, GraphQLClient, serve_gateway

pytestmark = SHARED_LOOP


VIEWER = "{ viewer { id email role partner { id name } } }"
CUSTOMERS = "{ customers { edges { node { id name } } } }"
CATALOG = "query($c: ID!) { catalog(actingCustomer: $c) { id } }"


@dataclass
class Scene:
    """A demo tenant whose first customer (Acme) has two cards and one paid order."""

    tenant: DemoTenant
    customer_id: str
    product_id: str
    primary_pm: str
    second_pm: str
    order_id: str
    other_customer_id: str
    other_product_id: str
    storage_licenses: int = 2

    def token(self, role: str) -> str:
        return self.tenant.tokens[role]


async def make_scene(gateway: GatewayServer) -> Scene:
    tenant = await gateway.tenant()
    acme, globex = tenant.customers
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product = await only_product(client, acme.id)
    other_product = await only_product(client, globex.id)
    primary = await add_card(client, acme.id, "pm_card_visa")
    second = await add_card(client, acme.id, "pm_card_mastercard")
    order = await buy_and_settle(client, acme.id, product["id"], 1)
    assert order["status"] == "SUCCEEDED"
    return Scene(
        tenant=tenant,
        customer_id=acme.id,
        product_id=product["id"],
        primary_pm=primary["id"],
        second_pm=second["id"],
        order_id=order["id"],
        other_customer_id=globex.id,
        other_product_id=other_product["id"],
    )


# Every operation that takes actingCustomer, as (name, document, variables).
Operation = tuple[str, str, Callable[[Scene, str], dict[str, Any]]]

BILLING_QUERIES: list[Operation] = [
    ("billingDetails", BILLING_DETAILS, lambda s, c: {"c": c}),
    ("order", ORDER, lambda s, c: {"c": c, "id": s.order_id}),
    ("orders", ORDERS, lambda s, c: {"c": c}),
    (
        "licensePurchaseSummary",
        LICENSE_SUMMARY,
        lambda s, c: {"c": c, "input": {"productId": s.product_id, "quantity": 2}},
    ),
    (
        "storageUpgradeSummary",
        STORAGE_SUMMARY,
        lambda s, c: {"c": c, "input": {"planId": "plan_storage_1tb", "licenses": 2, "billingInterval": "YEARLY"}},
    ),
]
BILLING_MUTATIONS: list[Operation] = [
    ("addPaymentMethod", ADD_PAYMENT_METHOD, lambda s, c: {"c": c, "input": {"paymentMethodToken": "pm_card_amex"}}),
    ("setPrimaryPaymentMethod", SET_PRIMARY, lambda s, c: {"c": c, "pm": s.second_pm}),
    ("removePaymentMethod", REMOVE_PAYMENT_METHOD, lambda s, c: {"c": c, "pm": s.second_pm}),
    ("buyLicenses", BUY_LICENSES, lambda s, c: {"c": c, "input": {"productId": s.product_id, "quantity": 3}}),
    (
        "upgradeStorage",
        UPGRADE_STORAGE,
        lambda s, c: {
            "c": c,
            "input": {"planId": "plan_storage_250gb", "licenses": s.storage_licenses, "billingInterval": "MONTHLY"},
        },
    ),
    (
        "scheduleLicenseChange",
        SCHEDULE_LICENSE_CHANGE,
        lambda s, c: {"c": c, "input": {"productId": s.product_id, "totalLicenses": 8}},
    ),
    ("cancelProduct", CANCEL_PRODUCT, lambda s, c: {"c": c, "input": {"productId": s.product_id}}),
    ("resumeProduct", RESUME_PRODUCT, lambda s, c: {"c": c, "input": {"productId": s.product_id}}),
]
BILLING_OPERATIONS = BILLING_QUERIES + BILLING_MUTATIONS
READ_OPERATIONS: list[Operation] = [
    ("catalog", CATALOG, lambda s, c: {"c": c}),
    ("products", PRODUCTS, lambda s, c: {"c": c}),
]
CUSTOMER_OPERATIONS = READ_OPERATIONS + BILLING_OPERATIONS


async def snapshot(gateway: GatewayServer, scene: Scene) -> dict[str, Any]:
    """Everything a billing operation could change for the scene's tenant."""
    client = gateway.client(scene.token("PARTNER_OWNER"))
    return {
        "products": [await products(client, c.id) for c in scene.tenant.customers],
        "billing": [await billing_details(client, c.id) for c in scene.tenant.customers],
        "orders": await count_rows(gateway, Order, Order.partner_id == scene.tenant.partner.id),
        "charges": await count_rows(
            gateway,
            SandboxPayment,
            col(SandboxPayment.order_id).in_(
                [o.id for o in await rows(gateway, Order, Order.partner_id == scene.tenant.partner.id)]
            ),
        ),
    }


# -- the role table ---------------------------------------------------------


async def test_partner_admin_is_forbidden_every_billing_query_and_mutation(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    before = await snapshot(gateway, scene)
    admin = gateway.client(scene.token("PARTNER_ADMIN"))

    for name, document, variables in BILLING_OPERATIONS:
        body = await admin.execute(document, variables(scene, scene.customer_id))
        assert (body["data"] or {}).get(name) is None, name
        assert error_codes(body) == ["FORBIDDEN"], (name, body)
        assert body["errors"][0]["path"] == [name]

    assert await snapshot(gateway, scene) == before


async def test_partner_admin_forbidden_comes_before_not_found(gateway: GatewayServer) -> None:
    """A refused role learns nothing about which ids exist."""
    scene = await make_scene(gateway)
    admin = gateway.client(scene.token("PARTNER_ADMIN"))
    for name, document, variables in BILLING_OPERATIONS:
        body = await admin.execute(document, variables(scene, "cst_doesnotexist"))
        assert error_codes(body) == ["FORBIDDEN"], (name, body)


async def test_partner_admin_may_read_viewer_customers_catalog_and_products(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    admin = gateway.client(scene.token("PARTNER_ADMIN"))

    assert (await admin.data(VIEWER))["viewer"]["role"] == "PARTNER_ADMIN"
    assert len((await admin.data(CUSTOMERS))["customers"]["edges"]) == 2
    assert len((await admin.data(CATALOG, {"c": scene.customer_id}))["catalog"]) == 6
    held = (await admin.data(PRODUCTS, {"c": scene.customer_id}))["products"]
    assert [(p["id"], p["totalLicenses"]) for p in held] == [(scene.product_id, 11)]


async def test_billing_roles_may_run_every_billing_query(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    for role in BILLING_ROLES:
        client = gateway.client(scene.token(role))
        for name, document, variables in BILLING_QUERIES + READ_OPERATIONS:
            data = await client.data(document, variables(scene, scene.customer_id))
            assert data[name] is not None, (role, name)


async def test_billing_roles_may_run_every_billing_mutation(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    for role in BILLING_ROLES:
        client = gateway.client(scene.token(role))
        for name, document, variables in BILLING_MUTATIONS:
            payload = (await client.data(document, variables(scene, scene.customer_id)))[name]
            assert payload["userErrors"] == [], (role, name, payload)
            if "order" in payload:
                await wait_for_status(client, scene.customer_id, payload["order"]["id"])
        # the next role starts from a removable second card again, and buys more storage
        scene.second_pm = (await add_card(client, scene.customer_id, "pm_card_mastercard"))["id"]
        scene.storage_licenses += 1
    held = await products(gateway.client(scene.token("PARTNER_OWNER")), scene.customer_id)
    assert [(p["plan"]["id"], p["totalLicenses"]) for p in held] == [
        ("plan_backup_professional", 11 + 3 + 3),
        ("plan_storage_250gb", 3),
    ]


# -- authentication ---------------------------------------------------------


def _bad_authorizations(unknown_token: str, real_token: str) -> dict[str, dict[str, str]]:
    return {
        "no header": {},
        "empty": {"Authorization": ""},
        "no scheme": {"Authorization": real_token},
        "basic scheme": {"Authorization": f"Basic {real_token}"},
        "bearer without token": {"Authorization": "Bearer"},
        "malformed token": {"Authorization": "Bearer not-a-token"},
        "truncated token": {"Authorization": f"Bearer {real_token[:-1]}"},
        "unknown token": {"Authorization": f"Bearer {unknown_token}"},
    }


async def test_missing_malformed_or_unknown_tokens_are_unauthenticated_everywhere(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    before = await snapshot(gateway, scene)
    real = scene.token("PARTNER_OWNER")
    unknown = "pbg_" + "A" * 43
    operations: list[Operation] = [
        ("viewer", VIEWER, lambda s, c: {}),
        ("customers", CUSTOMERS, lambda s, c: {}),
        *CUSTOMER_OPERATIONS,
    ]

    for label, headers in _bad_authorizations(unknown, real).items():
        for name, document, variables in operations:
            response = await gateway.http.post(
                "/graphql", json={"query": document, "variables": variables(scene, scene.customer_id)}, headers=headers
            )
            assert response.status_code == 200, (label, name)
            body = response.json()
            assert (body["data"] or {}).get(name) is None, (label, name)
            assert error_codes(body) == ["UNAUTHENTICATED"], (label, name, body)

    assert await snapshot(gateway, scene) == before


async def test_a_revoked_token_is_unauthenticated(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    viewer_id = (await client.data(VIEWER))["viewer"]["id"]
    async with gateway.runtime.db.orm(write=True) as session:
        for token in await rows(gateway, ApiToken, ApiToken.user_id == viewer_id):
            token.revoked_at = datetime.now(UTC)
            session.add(token)

    assert await client.error_code(VIEWER) == "UNAUTHENTICATED"


# -- tenancy: actingCustomer ------------------------------------------------


async def test_another_partners_customer_is_not_found_for_every_operation(gateway: GatewayServer) -> None:
    # given two partners, each with cards and a paid order
    ours = await make_scene(gateway)
    theirs = await make_scene(gateway)
    before = await snapshot(gateway, theirs)

    for role in ROLES:
        client = gateway.client(ours.token(role))
        operations = CUSTOMER_OPERATIONS if role != "PARTNER_ADMIN" else READ_OPERATIONS
        for name, document, variables in operations:
            # their customer, with their ids everywhere else in the input
            body = await client.execute(document, variables(theirs, theirs.customer_id))
            assert (body["data"] or {}).get(name) is None, (role, name)
            assert error_codes(body) == ["NOT_FOUND"], (role, name, body)

    assert await snapshot(gateway, theirs) == before


async def test_nonexistent_or_malformed_acting_customer_is_not_found(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    before = await snapshot(gateway, scene)
    client = gateway.client(scene.token("PARTNER_FINANCE_ADMIN"))
    bad_ids = [
        "cst_0000000000000000000",
        "",
        "x" * 65,
        "x" * 5000,
        "' OR 1=1 --",
        scene.product_id,
        scene.tenant.partner.id,
    ]

    for bad_id in bad_ids:
        for name, document, variables in CUSTOMER_OPERATIONS:
            body = await client.execute(document, variables(scene, bad_id))
            assert (body["data"] or {}).get(name) is None, (bad_id, name)
            assert error_codes(body) == ["NOT_FOUND"], (bad_id, name, body)

    assert await snapshot(gateway, scene) == before


# -- tenancy: ids inside the input ------------------------------------------


async def test_another_customers_product_is_product_not_found(gateway: GatewayServer) -> None:
    ours = await make_scene(gateway)
    theirs = await make_scene(gateway)
    client = gateway.client(ours.token("PARTNER_OWNER"))
    before_ours, before_theirs = await snapshot(gateway, ours), await snapshot(gateway, theirs)

    # the same partner's other customer, another partner's product, and nonsense
    for product_id in (ours.other_product_id, theirs.product_id, "prd_nope", "x" * 100, ""):
        payload = await buy(client, ours.customer_id, product_id, 1)
        assert payload["order"] is None, product_id
        assert payload["userErrors"] == [
            {
                "field": ["input", "productId"],
                "code": "PRODUCT_NOT_FOUND",
                "message": "No such product for this customer.",
            }
        ], product_id
        body = await client.execute(
            LICENSE_SUMMARY, {"c": ours.customer_id, "input": {"productId": product_id, "quantity": 1}}
        )
        assert error_codes(body) == ["NOT_FOUND"], (product_id, body)
        # Plan changes answer the same, and change nothing.
        for document, name, product_input in (
            (SCHEDULE_LICENSE_CHANGE, "scheduleLicenseChange", {"productId": product_id, "totalLicenses": 1}),
            (CANCEL_PRODUCT, "cancelProduct", {"productId": product_id}),
            (RESUME_PRODUCT, "resumeProduct", {"productId": product_id}),
        ):
            changed = (await client.data(document, {"c": ours.customer_id, "input": product_input}))[name]
            assert changed["product"] is None, (name, product_id)
            assert codes(changed) == ["PRODUCT_NOT_FOUND"], (name, product_id, changed)

    assert await snapshot(gateway, ours) == before_ours
    assert await snapshot(gateway, theirs) == before_theirs


async def test_another_customers_payment_method_is_payment_method_not_found(gateway: GatewayServer) -> None:
    ours = await make_scene(gateway)
    theirs = await make_scene(gateway)
    client = gateway.client(ours.token("PARTNER_OWNER"))
    sibling_pm = (await add_card(client, ours.other_customer_id, "pm_card_amex"))["id"]
    before_ours, before_theirs = await snapshot(gateway, ours), await snapshot(gateway, theirs)

    for pm_id in (sibling_pm, theirs.primary_pm, "pm_nope", "x" * 100):
        for document, name in (
            (SET_PRIMARY, "setPrimaryPaymentMethod"),
            (REMOVE_PAYMENT_METHOD, "removePaymentMethod"),
        ):
            payload = (await client.data(document, {"c": ours.customer_id, "pm": pm_id}))[name]
            assert payload == {
                "paymentMethod": None,
                "userErrors": [
                    {
                        "field": ["paymentMethodId"],
                        "code": "PAYMENT_METHOD_NOT_FOUND",
                        "message": "No such payment method for this customer.",
                    }
                ],
            }, (pm_id, name)
        payload = await buy(client, ours.customer_id, ours.product_id, 1, paymentMethodId=pm_id)
        assert payload["order"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("PAYMENT_METHOD_NOT_FOUND", ["input", "paymentMethodId"])
        ], pm_id
        storage = (
            await client.data(
                UPGRADE_STORAGE,
                {
                    "c": ours.customer_id,
                    "input": {
                        "planId": "plan_storage_250gb",
                        "licenses": 1,
                        "billingInterval": "MONTHLY",
                        "paymentMethodId": pm_id,
                    },
                },
            )
        )["upgradeStorage"]
        assert codes(storage) == ["PAYMENT_METHOD_NOT_FOUND"], pm_id

    assert await snapshot(gateway, ours) == before_ours
    assert await snapshot(gateway, theirs) == before_theirs
    sibling_methods = (await billing_details(client, ours.other_customer_id))["paymentMethods"]
    assert [(m["id"], m["isPrimary"]) for m in sibling_methods] == [(sibling_pm, True)]


async def test_another_customers_order_is_not_found(gateway: GatewayServer) -> None:
    ours = await make_scene(gateway)
    theirs = await make_scene(gateway)
    client = gateway.client(ours.token("PARTNER_OWNER"))
    await add_card(client, ours.other_customer_id)
    sibling_order = await buy_and_settle(client, ours.other_customer_id, ours.other_product_id, 1)

    for order_id in (sibling_order["id"], theirs.order_id, "ord_nope", ours.product_id, "", "x" * 1000):
        body = await client.execute(ORDER, {"c": ours.customer_id, "id": order_id})
        assert (body["data"] or {}).get("order") is None, order_id
        assert error_codes(body) == ["NOT_FOUND"], (order_id, body)

    # and the customer's own order list holds only its own order
    listed = (await client.data(ORDERS, {"c": ours.customer_id}))["orders"]["edges"]
    assert [e["node"]["id"] for e in listed] == [ours.order_id]


# -- the audit trail --------------------------------------------------------


def _audit_view(entry: AuditEntry) -> tuple[Any, ...]:
    return (entry.user_id, entry.role, entry.customer_id, entry.action, entry.target_id, entry.outcome)


async def test_billing_actions_are_audited_with_who_whom_what_and_outcome(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client: GraphQLClient = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
    (user,) = await rows(gateway, User, User.id == (await client.data(VIEWER))["viewer"]["id"])
    product = await only_product(client, acme.id)
    role = "PARTNER_FINANCE_ADMIN"

    # when the finance admin works through a billing session
    visa = await add_card(client, acme.id, "pm_card_visa")
    declined = (
        await client.data(
            ADD_PAYMENT_METHOD, {"c": acme.id, "input": {"paymentMethodToken": "pm_card_visa_chargeDeclined"}}
        )
    )["addPaymentMethod"]
    assert codes(declined) == ["CARD_DECLINED"]
    amex = await add_card(client, acme.id, "pm_card_amex")
    made_primary = (await client.data(SET_PRIMARY, {"c": acme.id, "pm": amex["id"]}))["setPrimaryPaymentMethod"]
    assert made_primary["userErrors"] == []
    order = await buy_and_settle(client, acme.id, product["id"], 2)
    assert order["status"] == "SUCCEEDED"
    removed = (await client.data(REMOVE_PAYMENT_METHOD, {"c": acme.id, "pm": visa["id"]}))["removePaymentMethod"]
    assert removed["userErrors"] == []

    # then every step is in the audit trail, in order
    entries = sorted(await rows(gateway, AuditEntry, AuditEntry.partner_id == tenant.partner.id), key=lambda e: e.id)
    assert [_audit_view(e) for e in entries] == [
        (user.id, role, acme.id, "payment_method.add", visa["id"], "OK"),
        (user.id, role, acme.id, "payment_method.add", None, "CARD_DECLINED"),
        (user.id, role, acme.id, "payment_method.add", amex["id"], "OK"),
        (user.id, role, acme.id, "payment_method.set_primary", amex["id"], "OK"),
        (user.id, role, acme.id, "order.license_purchase", order["id"], "PLACED"),
        (None, None, acme.id, "order.status_changed", order["id"], "PROCESSING"),
        (None, None, acme.id, "order.status_changed", order["id"], "SUCCEEDED"),
        (user.id, role, acme.id, "payment_method.remove", visa["id"], "OK"),
    ]
    assert all(e.occurred_at.tzinfo is not None for e in entries)
    assert entries[4].detail == {
        "total_minor": order["total"]["minorUnits"],
        "quantity": 2,
        "plan": "plan_backup_professional",
    }


async def test_audit_trail_survives_a_restart(tmp_path: Any) -> None:
    settings = sqlite_settings(tmp_path)
    async with serve_gateway(settings) as first:
        tenant = await first.tenant()
        await add_card(first.client(tenant.tokens["PARTNER_OWNER"]), tenant.customers[0].id)
        recorded = [_audit_view(e) for e in await rows(first, AuditEntry, AuditEntry.partner_id == tenant.partner.id)]
    assert len(recorded) == 1

    async with serve_gateway(settings) as second:
        stored = await rows(second, AuditEntry, AuditEntry.partner_id == tenant.partner.id)
        after_restart = [_audit_view(e) for e in stored]
    assert after_restart == recorded


async def test_rejected_orders_are_audited_with_the_reason(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product = await only_product(client, acme.id)

    assert codes(await buy(client, acme.id, product["id"], 1)) == ["NO_PAYMENT_METHOD"]
    assert codes(await buy(client, acme.id, product["id"], 0)) == ["INVALID_QUANTITY"]

    entries = sorted(await rows(gateway, AuditEntry, AuditEntry.partner_id == tenant.partner.id), key=lambda e: e.id)
    assert [(e.customer_id, e.role, e.outcome) for e in entries] == [
        (acme.id, "PARTNER_OWNER", "NO_PAYMENT_METHOD"),
        (acme.id, "PARTNER_OWNER", "INVALID_QUANTITY"),
    ]
    assert all(e.action.startswith("order.") for e in entries)


async def test_rejected_and_placed_orders_share_one_audit_action_name(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product = await only_product(client, acme.id)
    await add_card(client, acme.id)

    assert codes(await buy(client, acme.id, product["id"], 0)) == ["INVALID_QUANTITY"]
    await buy_and_settle(client, acme.id, product["id"], 1)

    actions = {
        e.outcome: e.action
        for e in await rows(gateway, AuditEntry, AuditEntry.partner_id == tenant.partner.id)
        if e.action.startswith("order.") and e.action != "order.status_changed"
    }
    assert actions == {"INVALID_QUANTITY": "order.license_purchase", "PLACED": "order.license_purchase"}


async def test_refused_billing_mutations_of_a_partner_admin_are_audited(gateway: GatewayServer) -> None:
    scene = await make_scene(gateway)
    admin = gateway.client(scene.token("PARTNER_ADMIN"))
    admin_id = (await admin.data(VIEWER))["viewer"]["id"]
    before = await count_rows(gateway, AuditEntry, AuditEntry.partner_id == scene.tenant.partner.id)

    for name, document, variables in BILLING_MUTATIONS:
        assert error_codes(await admin.execute(document, variables(scene, scene.customer_id))) == ["FORBIDDEN"], name

    entries = sorted(
        await rows(gateway, AuditEntry, AuditEntry.partner_id == scene.tenant.partner.id), key=lambda e: e.id
    )[before:]
    assert [_audit_view(e) for e in entries] == [
        (admin_id, "PARTNER_ADMIN", scene.customer_id, action, None, "FORBIDDEN")
        for action in (
            "payment_method.add",
            "payment_method.set_primary",
            "payment_method.remove",
            "order.license_purchase",
            "order.storage_upgrade",
            "product.schedule_license_change",
            "product.cancel",
            "product.resume",
        )
    ]

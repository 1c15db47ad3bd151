"""Adding, choosing and removing a customer's payment methods (sandbox tokens)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models import PaymentMethod, SandboxPaymentMethod
from tests.api.helpers import (  # noqa: F401 - fixtures
    ADD_PAYMENT_METHOD,
    REMOVE_PAYMENT_METHOD,
    SET_PRIMARY,
    SHARED_LOOP,
    add_card,
    billing_details,
    buy,
    codes,
    count_rows,
    module_gateway,
    only_product,
    rows,
    shared_gateway,
)
from tests.support.gateway import GatewayServer, GraphQLClient

pytestmark = SHARED_LOOP


TOKEN_FIELD = ["input", "paymentMethodToken"]


async def _add(client: GraphQLClient, customer_id: str, token: str, make_primary: bool | None = None) -> dict[str, Any]:
    payment_input: dict[str, object] = {"paymentMethodToken": token}
    if make_primary is not None:
        payment_input["makePrimary"] = make_primary
    return (await client.data(ADD_PAYMENT_METHOD, {"c": customer_id, "input": payment_input}))["addPaymentMethod"]


async def _set_primary(client: GraphQLClient, customer_id: str, pm_id: str) -> dict[str, Any]:
    return (await client.data(SET_PRIMARY, {"c": customer_id, "pm": pm_id}))["setPrimaryPaymentMethod"]


async def _remove(client: GraphQLClient, customer_id: str, pm_id: str) -> dict[str, Any]:
    return (await client.data(REMOVE_PAYMENT_METHOD, {"c": customer_id, "pm": pm_id}))["removePaymentMethod"]


def _primary_flags(details: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(m["last4"], m["isPrimary"]) for m in details["paymentMethods"]]


async def test_first_payment_method_becomes_primary(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])

    payload = await _add(client, acme.id, "pm_card_visa")

    assert payload["userErrors"] == []
    method = payload["paymentMethod"]
    assert method["id"].startswith("pm_")
    assert {k: v for k, v in method.items() if k != "id"} == {
        "brand": "visa",
        "last4": "4242",
        "expMonth": 12,
        "expYear": datetime.now(UTC).year + 3,
        "isPrimary": True,
    }
    details = await billing_details(client, acme.id)
    assert details == {
        "customer": {"id": acme.id, "name": "Acme Dental"},
        "paymentMethods": [method],
        "primaryPaymentMethod": method,
    }


async def test_later_methods_are_not_primary_unless_asked(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_FINANCE_ADMIN"])
    visa = await add_card(client, acme.id, "pm_card_visa")

    mastercard = await _add(client, acme.id, "pm_card_mastercard")  # makePrimary omitted: false
    assert mastercard["paymentMethod"]["isPrimary"] is False
    explicit_null = await _add(client, acme.id, "pm_card_mastercard", None)
    assert explicit_null["paymentMethod"]["isPrimary"] is False

    details = await billing_details(client, acme.id)
    assert _primary_flags(details) == [("4242", True), ("4444", False), ("4444", False)]
    assert details["primaryPaymentMethod"]["id"] == visa["id"]


async def test_make_primary_switches_the_primary_method(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    await add_card(client, acme.id, "pm_card_visa")

    amex = await add_card(client, acme.id, "pm_card_amex", make_primary=True)

    assert amex["isPrimary"] is True
    assert amex["brand"] == "amex" and amex["last4"] == "8431"
    details = await billing_details(client, acme.id)
    assert _primary_flags(details) == [("4242", False), ("8431", True)]
    assert details["primaryPaymentMethod"] == amex


async def test_set_primary_payment_method(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    visa = await add_card(client, acme.id, "pm_card_visa")
    mastercard = await add_card(client, acme.id, "pm_card_mastercard")

    payload = await _set_primary(client, acme.id, mastercard["id"])

    assert payload == {"paymentMethod": {**mastercard, "isPrimary": True}, "userErrors": []}
    details = await billing_details(client, acme.id)
    assert _primary_flags(details) == [("4242", False), ("4444", True)]
    assert details["primaryPaymentMethod"]["id"] == mastercard["id"]

    # setting the primary one again changes nothing
    again = await _set_primary(client, acme.id, mastercard["id"])
    assert again["userErrors"] == []
    assert await billing_details(client, acme.id) == details

    # and back
    await _set_primary(client, acme.id, visa["id"])
    assert _primary_flags(await billing_details(client, acme.id)) == [("4242", True), ("4444", False)]


async def test_purchases_charge_the_primary_method(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product = await only_product(client, acme.id)
    await add_card(client, acme.id, "pm_card_visa")
    amex = await add_card(client, acme.id, "pm_card_amex")
    await _set_primary(client, acme.id, amex["id"])

    payload = await buy(client, acme.id, product["id"], 1)

    assert payload["userErrors"] == []
    assert payload["order"]["paymentMethod"] == {"id": amex["id"], "brand": "amex", "last4": "8431", "isPrimary": True}


async def test_remove_a_secondary_method(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    visa = await add_card(client, acme.id, "pm_card_visa")
    mastercard = await add_card(client, acme.id, "pm_card_mastercard")

    payload = await _remove(client, acme.id, mastercard["id"])

    assert payload == {"paymentMethod": mastercard, "userErrors": []}
    details = await billing_details(client, acme.id)
    assert details["paymentMethods"] == [visa]
    assert details["primaryPaymentMethod"] == visa
    # the provider forgets it too
    (removed_row,) = await rows(gateway, PaymentMethod, PaymentMethod.id == mastercard["id"])
    (kept_row,) = await rows(gateway, PaymentMethod, PaymentMethod.id == visa["id"])
    at_provider = await rows(
        gateway, SandboxPaymentMethod, SandboxPaymentMethod.provider_customer_ref == f"sbx_cus_{acme.id}"
    )
    detached = {m.id: m.detached for m in at_provider}
    assert detached == {removed_row.provider_ref: True, kept_row.provider_ref: False}


async def test_removing_the_primary_promotes_the_newest_remaining_method(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    visa = await add_card(client, acme.id, "pm_card_visa")
    await add_card(client, acme.id, "pm_card_mastercard")
    amex = await add_card(client, acme.id, "pm_card_amex")

    payload = await _remove(client, acme.id, visa["id"])

    assert payload["userErrors"] == []
    assert payload["paymentMethod"]["id"] == visa["id"]
    assert payload["paymentMethod"]["isPrimary"] is False
    details = await billing_details(client, acme.id)
    assert _primary_flags(details) == [("4444", False), ("8431", True)]
    assert details["primaryPaymentMethod"]["id"] == amex["id"]


async def test_removing_the_last_method_leaves_no_primary_and_purchases_need_one(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product = await only_product(client, acme.id)
    visa = await add_card(client, acme.id, "pm_card_visa")

    assert (await _remove(client, acme.id, visa["id"]))["userErrors"] == []

    details = await billing_details(client, acme.id)
    assert details["paymentMethods"] == []
    assert details["primaryPaymentMethod"] is None
    purchase = await buy(client, acme.id, product["id"], 1)
    assert purchase["order"] is None
    assert codes(purchase) == ["NO_PAYMENT_METHOD"]
    # and a card added now is primary again
    assert (await add_card(client, acme.id, "pm_card_amex"))["isPrimary"] is True


async def test_a_removed_method_can_be_neither_chosen_nor_removed_again(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    product = await only_product(client, acme.id)
    await add_card(client, acme.id, "pm_card_visa")
    mastercard = await add_card(client, acme.id, "pm_card_mastercard")
    await _remove(client, acme.id, mastercard["id"])

    refused = [await _set_primary(client, acme.id, mastercard["id"]), await _remove(client, acme.id, mastercard["id"])]
    for payload in refused:
        assert payload["paymentMethod"] is None
        assert codes(payload) == ["PAYMENT_METHOD_NOT_FOUND"]
    purchase = await buy(client, acme.id, product["id"], 1, paymentMethodId=mastercard["id"])
    assert purchase["order"] is None
    assert codes(purchase) == ["PAYMENT_METHOD_NOT_FOUND"]
    assert _primary_flags(await billing_details(client, acme.id)) == [("4242", True)]


async def test_a_declined_card_is_refused_and_nothing_is_stored(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])

    payload = await _add(client, acme.id, "pm_card_visa_chargeDeclined", True)

    assert payload["paymentMethod"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CARD_DECLINED", TOKEN_FIELD)]
    assert "declined" in payload["userErrors"][0]["message"]
    details = await billing_details(client, acme.id)
    assert details["paymentMethods"] == [] and details["primaryPaymentMethod"] is None
    assert await count_rows(gateway, PaymentMethod, PaymentMethod.customer_id == acme.id) == 0


async def test_a_declined_card_leaves_existing_methods_alone(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    visa = await add_card(client, acme.id, "pm_card_visa")

    assert codes(await _add(client, acme.id, "pm_card_visa_chargeDeclined", True)) == ["CARD_DECLINED"]

    details = await billing_details(client, acme.id)
    assert details["paymentMethods"] == [visa]
    assert details["primaryPaymentMethod"] == visa


async def test_unknown_and_malformed_tokens_are_invalid(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    bad_tokens = [
        "pm_card_unknown",
        "tok_visa",
        "",
        "pm",
        "pm card visa",
        "pm_card_visa\n",
        "pm_card_visa'; DROP TABLE payment_methods; --",
        "x" * 256,
        "x" * 10_000,
        "pm_card_vísa",
    ]

    for token in bad_tokens:
        payload = await _add(client, acme.id, token, True)
        assert payload["paymentMethod"] is None, token
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_PAYMENT_METHOD_TOKEN", TOKEN_FIELD)
        ], token

    assert await count_rows(gateway, PaymentMethod, PaymentMethod.customer_id == acme.id) == 0


async def test_card_numbers_are_refused_and_never_stored(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme = tenant.customers[0]
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])
    card_numbers = ["4242424242424242", "4000 0566 5566 5556", "5555-5555-5555-4444", "378282246310005"]

    for number in card_numbers:
        payload = await _add(client, acme.id, number, True)
        assert payload["paymentMethod"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_PAYMENT_METHOD_TOKEN", TOKEN_FIELD)
        ], number
        assert "Card numbers are never accepted" in payload["userErrors"][0]["message"]

    assert await count_rows(gateway, PaymentMethod, PaymentMethod.customer_id == acme.id) == 0
    database = Path(gateway.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for number in card_numbers:
        assert number.encode() not in stored
        assert number.replace(" ", "").replace("-", "").encode() not in stored


async def test_payment_methods_belong_to_one_customer(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    acme, globex = tenant.customers
    client = gateway.client(tenant.tokens["PARTNER_OWNER"])

    visa = await add_card(client, acme.id, "pm_card_visa")
    amex = await add_card(client, globex.id, "pm_card_amex")

    assert (await billing_details(client, acme.id))["paymentMethods"] == [visa]
    assert (await billing_details(client, globex.id))["paymentMethods"] == [amex]
    assert visa["isPrimary"] and amex["isPrimary"]

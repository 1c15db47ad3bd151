"""``partner-billing renew --as-of``, the test clock, run as a user runs it: its
own process on the gateway's SQLite file, while a gateway serves the same file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.api.helpers import (
    CANCEL_PRODUCT,
    SCHEDULE_LICENSE_CHANGE,
    add_card,
    only_product,
    set_period,
)
from tests.cli.test_cli import assert_clean_failure, cli
from tests.conftest import sqlite_settings
from tests.support.gateway import serve_gateway


async def test_a_customers_months_through_the_renew_command(tmp_path: Path) -> None:
    database = tmp_path / "renew.sqlite3"
    seeded = (await cli(database, "seed-demo", "--json")).json()
    acme, globex = (c["id"] for c in seeded["customers"])

    async def renew(as_of: str) -> dict[str, int]:
        result = await cli(database, "renew", "--as-of", as_of, "--json")
        assert result.code == 0, result.stderr
        assert "Traceback" not in result.stderr
        renewed: dict[str, int] = result.json()
        return renewed

    settings = sqlite_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{database}")
    async with serve_gateway(settings) as gateway:
        client = gateway.client(seeded["tokens"]["PARTNER_OWNER"])
        product = await only_product(client, acme)
        await set_period(gateway, product["id"], datetime(2025, 1, 10, tzinfo=UTC))
        await set_period(gateway, (await only_product(client, globex))["id"], datetime(2100, 1, 1, tzinfo=UTC))
        await add_card(client, acme, "pm_card_chargeCustomerFail")

        assert await renew("2025-02-09T23:59:59Z") == {"renewed": 0, "failed": 0, "canceled": 0}
        assert await renew("2025-02-10T00:00:00Z") == {"renewed": 0, "failed": 1, "canceled": 0}
        assert (await only_product(client, acme))["status"] == "PAST_DUE"

        await add_card(client, acme, "pm_card_visa", make_primary=True)
        assert await renew("2025-02-10T12:00:00.000Z") == {"renewed": 0, "failed": 0, "canceled": 0}
        assert await renew("2025-02-11") == {"renewed": 1, "failed": 0, "canceled": 0}  # no offset: UTC
        renewed = await only_product(client, acme)
        assert (renewed["status"], renewed["currentPeriodEnd"]) == ("ACTIVE", "2025-03-10T00:00:00.000Z")

        change = {"c": acme, "input": {"productId": product["id"], "totalLicenses": 8}}
        assert (await client.data(SCHEDULE_LICENSE_CHANGE, change))["scheduleLicenseChange"]["userErrors"] == []
        assert await renew("2025-03-10T00:00:00Z") == {"renewed": 1, "failed": 0, "canceled": 0}
        assert (await only_product(client, acme))["totalLicenses"] == 8

        cancel = {"c": acme, "input": {"productId": product["id"]}}
        assert (await client.data(CANCEL_PRODUCT, cancel))["cancelProduct"]["userErrors"] == []
        assert await renew("2025-04-10T00:00:00Z") == {"renewed": 0, "failed": 0, "canceled": 1}
        assert (await only_product(client, acme))["status"] == "CANCELED"

    text = await cli(database, "renew", "--as-of", "2030-01-01T00:00:00Z")
    assert text.code == 0, text.stderr
    assert text.stdout.strip() == "renewed 0, failed 0, canceled 0"


async def test_a_bad_as_of_is_a_clear_error(tmp_path: Path) -> None:
    result = await cli(tmp_path / "bad.sqlite3", "renew", "--as-of", "next tuesday")
    assert_clean_failure(result, "'next tuesday' is not an ISO 8601 time")

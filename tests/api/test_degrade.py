"""Degrading rather than falling over, on a real SQLite file: another process
holding the write lock gets a clear, retryable answer; the sandbox says what it
is and its authentication endpoint is rate limited."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from gateway.degrade import SANDBOX_AUTHENTICATE_RATE, listening_hosts, warn_if_sandbox_exposed
from tests.conftest import sqlite_settings
from tests.support.gateway import serve_gateway

ADD = """
mutation($c: ID!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa"}) {
    paymentMethod { id } userErrors { code }
  }
}"""
# Another process (a backup, a maintenance script) keeps SQLite's write lock
# until its standard input closes.
_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


async def test_sqlite_locked_by_another_process_is_a_retryable_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "locked.sqlite3"
    settings = sqlite_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{database}", sqlite_busy_timeout_ms=200)
    async with serve_gateway(settings) as gateway:
        tenant = await gateway.tenant()
        client = gateway.client(tenant.tokens["PARTNER_OWNER"])
        customer = tenant.customers[0].id
        caplog.set_level(logging.WARNING)
        locker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _LOCKER,
            str(database),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert locker.stdout is not None and locker.stdin is not None
        try:
            assert await asyncio.wait_for(locker.stdout.readline(), 10) == b"locked\n"
            response = await client.post(ADD, {"c": customer})
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"]
            (error,) = response.json()["errors"]
            assert error["extensions"] == {"code": "INTERNAL", "retryable": True}
            assert "retry" in error["message"]
            # Reads are not blocked by a writer (WAL).
            assert (await client.data("{ viewer { id } }"))["viewer"]["id"]
        finally:
            locker.stdin.close()
            await asyncio.wait_for(locker.wait(), 10)
        # The lock gone, the same request goes through.
        retried = await client.data(ADD, {"c": customer})
        assert retried["addPaymentMethod"]["userErrors"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_sandbox_authenticate_is_rate_limited_per_address(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path)) as gateway:
        body = {"clientSecret": "pi_nope_secret_x", "success": True}
        statuses = [
            (await gateway.http.post("/sandbox/authenticate", json=body)).status_code
            for _ in range(SANDBOX_AUTHENTICATE_RATE.requests)
        ]
        assert set(statuses) == {404}  # no such payment: answered, not limited
        limited = await gateway.http.post("/sandbox/authenticate", json=body)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # The API itself is not affected.
        assert (await gateway.http.get("/healthz")).status_code == 200


async def test_a_sandbox_gateway_beyond_loopback_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway")
    async with serve_gateway(sqlite_settings(tmp_path)) as gateway:
        assert (await gateway.http.get("/readyz")).json()["payments"] == "sandbox"
    assert not [r for r in caplog.records if "SANDBOX PAYMENTS" in r.getMessage()]

    exposed = sqlite_settings(tmp_path, host="0.0.0.0")
    async with serve_gateway(exposed) as gateway:
        assert (await gateway.http.get("/readyz")).json()["payments"] == "sandbox"
    (warning,) = [r for r in caplog.records if "SANDBOX PAYMENTS" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "0.0.0.0" in warning.getMessage()


def test_the_listening_address_is_read_from_host_and_uvicorns_command_line(tmp_path: Path) -> None:
    local = sqlite_settings(tmp_path)
    procfile = ["uvicorn", "gateway.asgi:app", "--host", "0.0.0.0", "--port", "8000"]
    assert listening_hosts(local, procfile) == ["127.0.0.1", "0.0.0.0"]
    assert listening_hosts(local, ["uvicorn", "--host=::"]) == ["127.0.0.1", "::"]
    assert warn_if_sandbox_exposed(local, procfile)
    assert not warn_if_sandbox_exposed(local, ["uvicorn", "--host", "127.0.0.1"])
    assert not warn_if_sandbox_exposed(sqlite_settings(tmp_path, host="localhost"), [])
    assert not warn_if_sandbox_exposed(sqlite_settings(tmp_path, host="::1"), [])

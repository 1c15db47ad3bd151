"""Tracing: a traced gateway process sends its spans to a real OTLP/HTTP
endpoint (a small server here); an untraced one starts without the
OpenTelemetry packages at all."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.api.helpers import ADD_PAYMENT_METHOD
from tests.observability.support import observed_gateway
from tests.support.processes import REPO_ROOT
from tests.support.services import unavailable

# uvicorn's command line in a Python where `import opentelemetry…` fails, as
# in an installation without the otel extra.
WITHOUT_OPENTELEMETRY = (
    sys.executable,
    "-c",
    "import sys; sys.modules['opentelemetry'] = None; import uvicorn; uvicorn.main()",
)


class OtlpReceiver:
    """Accepts OTLP/HTTP trace exports (protobuf) and keeps their bodies."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/traces":
                    with receiver._changed:
                        receiver.bodies.append(body)
                        receiver._changed.notify_all()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, *needles: bytes, timeout: float = 15.0) -> bytes:
        """All exported bodies so far, once they contain every needle."""
        with self._changed:
            found = self._changed.wait_for(lambda: all(n in b"".join(self.bodies) for n in needles), timeout)
            everything = b"".join(self.bodies)
        assert found, f"no span export with {needles} within {timeout}s"
        return everything


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(5)


def require_otel() -> None:
    for module in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (scripts/setup test installs the otel extra)")


async def test_operations_are_traced_to_the_otlp_endpoint(tmp_path: Path, otlp: OtlpReceiver) -> None:
    require_otel()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    with observed_gateway(tmp_path, env) as gateway:
        tenant = await gateway.tenant()
        customer = tenant.customers[0].id
        async with gateway.process.client(tenant.tokens["PARTNER_OWNER"]) as client:
            await client.data("query TracedViewer { viewer { id } }")
            card = {"paymentMethodToken": "pm_card_mastercard", "makePrimary": False}
            added = await client.data(ADD_PAYMENT_METHOD, {"c": customer, "input": card})
            assert added["addPaymentMethod"]["userErrors"] == []

        exported = await asyncio.to_thread(
            otlp.wait_for, b"GraphQL Query: TracedViewer", b"GraphQL Resolving: addPaymentMethod"
        )

    assert b"GraphQL Parsing" in exported and b"GraphQL Validation" in exported
    assert b"partner-billing-gateway" in exported  # the service's name
    assert b"graphql.param.actingCustomer" in exported and customer.encode() in exported
    # Input objects (card tokens, idempotency keys) stay out of the spans.
    assert b"graphql.param.input" not in exported and b"pm_card_mastercard" not in exported


def _gateway_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}", LOG_FORMAT="text", PYTHONUNBUFFERED="1"
    )
    env.update(extra)
    return env


async def test_an_untraced_gateway_runs_without_the_opentelemetry_packages(tmp_path: Path) -> None:
    with observed_gateway(tmp_path, {"OTEL": "off"}, uvicorn=WITHOUT_OPENTELEMETRY) as gateway:
        tenant = await gateway.tenant()
        async with gateway.process.client(tenant.tokens["PARTNER_OWNER"]) as client:
            assert (await client.data("{ viewer { email } }"))["viewer"]["email"]


def test_tracing_without_the_packages_stops_the_start_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*WITHOUT_OPENTELEMETRY, "gateway.asgi:app", "--port", "0"],
        cwd=REPO_ROOT,
        env=_gateway_env(tmp_path, OTEL="on"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "gateway: configuration error: tracing is on (OTEL=on or OTEL_EXPORTER_OTLP_ENDPOINT) but the OpenTelemetry "
        "packages are missing: install the gateway with its otel extra (pip install 'partner-billing-gateway[otel]'), "
        "or set OTEL=off"
    )
    assert "Traceback" not in result.stderr

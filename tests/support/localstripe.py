"""Run localstripe, a stateful Stripe emulator, as a subprocess for tests.

localstripe accepts any ``sk_…`` key, forgets everything between runs (we start
it with ``--from-scratch``) and answers the real Stripe REST paths, plus a few
of its own: ``/_config/webhooks/<name>`` and ``/v1/payment_intents/<id>/_authenticate``.

Set ``LOCALSTRIPE_URL`` to use an emulator that is already running (e.g. a CI
service container) instead of starting one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "LOCALSTRIPE_API_KEY",
    "THREE_D_SECURE_CARD_NUMBER",
    "LocalStripe",
    "LocalStripeUnavailable",
    "ProxiedRequest",
    "StripeProxy",
    "authenticate_payment_intent",
    "create_card_payment_method",
    "emulator_get",
    "events_about",
    "free_port",
    "list_all",
    "list_payment_intents",
    "payment_intents_of_order",
    "register_webhook",
    "sign_webhook_payload",
    "start_localstripe",
    "start_localstripe_or_skip",
    "stripe_event_payload",
]

LOCALSTRIPE_API_KEY = "sk_test_localstripe"
THREE_D_SECURE_CARD_NUMBER = "4000002760003184"

# localstripe pickles its whole store to the fixed path /tmp/localstripe.pickle
# after every write: several emulators (parallel test runs, other developers)
# would overwrite one another's file. We never reload it, so turn it off.
_BOOTSTRAP = """
import sys
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
sys.argv = ["localstripe", "--from-scratch", "--port", sys.argv[1]]
server.start()
"""


class LocalStripeUnavailable(RuntimeError):
    """localstripe is not installed or did not come up."""


@dataclass
class LocalStripe:
    """A localstripe the tests talk to; ``process`` is None when it was not ours."""

    base_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log_file: BinaryIO | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the process we started (a no-op for an external emulator)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.process is not None and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the emulator's output, to explain a failure."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n" + self.log_path.read_text(errors="replace")[-chars:]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_localstripe(*, startup_timeout_s: float = 20.0) -> LocalStripe:
    """Start localstripe on a free port and wait until it answers.

    Raises LocalStripeUnavailable when it is not installed or does not answer.
    """
    external = os.environ.get("LOCALSTRIPE_URL")
    if external:
        stripe_ = LocalStripe(base_url=external.rstrip("/"))
        _wait_until_ready(stripe_, deadline=time.monotonic() + startup_timeout_s)
        return stripe_

    if importlib.util.find_spec("localstripe") is None:
        raise LocalStripeUnavailable("the localstripe package is not installed (pip install localstripe)")

    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"localstripe-{port}.log"
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    except OSError as error:
        log_file.close()
        raise LocalStripeUnavailable(f"could not start localstripe: {error}") from error
    stripe_ = LocalStripe(
        base_url=f"http://127.0.0.1:{port}",
        process=process,
        log_path=log_path,
        _log_file=log_file,
    )
    try:
        _wait_until_ready(stripe_, deadline=time.monotonic() + startup_timeout_s)
    except LocalStripeUnavailable:
        stripe_.stop()
        raise
    return stripe_


def start_localstripe_or_skip() -> LocalStripe:
    """``start_localstripe`` for a fixture: skip the tests when the emulator
    cannot run, except on CI (``CI=true``), where that is a failure."""
    try:
        return start_localstripe()
    except LocalStripeUnavailable as error:
        message = f"localstripe is not available: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _wait_until_ready(stripe_: LocalStripe, *, deadline: float) -> None:
    while time.monotonic() < deadline:
        if stripe_.process is not None and stripe_.process.poll() is not None:
            raise LocalStripeUnavailable(
                f"localstripe exited with code {stripe_.process.returncode}{stripe_.log_tail()}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{stripe_.base_url}/v1/balance", headers=_auth(), timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise LocalStripeUnavailable(f"localstripe did not answer at {stripe_.base_url}{stripe_.log_tail()}")


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {LOCALSTRIPE_API_KEY}"}


async def register_webhook(base: str, name: str, url: str, secret: str, events: list[str] | None = None) -> None:
    """Have localstripe POST every event (or only ``events``) to ``url``,
    signed with ``secret``. Registering the same ``name`` again replaces it."""
    # A JSON body, which localstripe also reads, carries a list (even empty).
    config: dict[str, Any] = {"url": url, "secret": secret, "events": events}
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        response = await client.post(f"/_config/webhooks/{name}", json=config)
        response.raise_for_status()


async def authenticate_payment_intent(
    base: str, pi_id: str, success: bool, client_secret: str | None = None
) -> dict[str, Any]:
    """Finish (or fail) 3-D Secure for a PaymentIntent in ``requires_action``,
    as the customer would in Stripe.js; returns the PaymentIntent."""
    async with httpx.AsyncClient(base_url=base, headers=_auth(), timeout=5) as client:
        if client_secret is None:
            fetched = await client.get(f"/v1/payment_intents/{pi_id}")
            fetched.raise_for_status()
            client_secret = fetched.json()["client_secret"]
        response = await client.post(
            f"/v1/payment_intents/{pi_id}/_authenticate",
            data={
                "client_secret": client_secret,
                "success": "true" if success else "false",
            },
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def create_card_payment_method(base: str, number: str = THREE_D_SECURE_CARD_NUMBER) -> str:
    """Create a card PaymentMethod from a raw test card number (what Stripe.js
    does client-side) and return its id; the default card asks for 3-D Secure."""
    card = {
        "card[number]": number,
        "card[exp_month]": "12",
        "card[exp_year]": "2034",
        "card[cvc]": "123",
    }
    async with httpx.AsyncClient(base_url=base, headers=_auth(), timeout=5) as client:
        response = await client.post("/v1/payment_methods", data={"type": "card", **card})
        response.raise_for_status()
        pm_id: str = response.json()["id"]
        return pm_id


async def list_payment_intents(base: str) -> list[dict[str, Any]]:
    """Every PaymentIntent the emulator holds, oldest first (it cannot filter)."""
    intents: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 100}
    async with httpx.AsyncClient(base_url=base, headers=_auth(), timeout=5) as client:
        while True:
            response = await client.get("/v1/payment_intents", params=params)
            response.raise_for_status()
            page = response.json()
            intents.extend(page["data"])
            if not page["has_more"]:
                return intents
            params["starting_after"] = page["data"][-1]["id"]


# --- more helpers for the gateway's end-to-end Stripe tests ---------------------------


async def emulator_get(base: str, path: str, params: dict[str, str | int] | None = None) -> dict[str, Any]:
    """GET one object (or one list page) from the emulator."""
    async with httpx.AsyncClient(base_url=base, headers=_auth(), timeout=5) as client:
        response = await client.get(path, params=params)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def list_all(base: str, path: str, params: dict[str, str | int] | None = None) -> list[dict[str, Any]]:
    """Every object of a list endpoint (``/v1/customers``, ``/v1/events``…), page by page."""
    query: dict[str, str | int] = {"limit": 100, **(params or {})}
    found: list[dict[str, Any]] = []
    while True:
        page = await emulator_get(base, path, query)
        found.extend(page["data"])
        if not page["has_more"] or not page["data"]:
            return found
        query["starting_after"] = page["data"][-1]["id"]


async def payment_intents_of_order(base: str, order_id: str) -> list[dict[str, Any]]:
    """The PaymentIntents whose ``metadata.order_id`` names a gateway order."""
    return [pi for pi in await list_payment_intents(base) if (pi.get("metadata") or {}).get("order_id") == order_id]


async def events_about(base: str, object_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
    """The events the emulator made about one object (a PaymentIntent…), of one
    type if given. localstripe makes an event when it schedules its webhook
    delivery (about a second before sending it), so this is exact right away."""
    params: dict[str, str | int] = {"type": event_type} if event_type else {}
    events = await list_all(base, "/v1/events", params)
    return [event for event in events if event["data"]["object"].get("id") == object_id]


def sign_webhook_payload(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, made the way Stripe (and
    localstripe) make it: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={signed_at},v1={digest}"


def stripe_event_payload(event_type: str, data_object: dict[str, Any], *, event_id: str | None = None) -> bytes:
    """The JSON body of a Stripe event delivery about ``data_object``."""
    event = {
        "id": event_id or f"evt_test_{secrets.token_hex(8)}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": data_object},
    }
    return json.dumps(event).encode()


@dataclass(frozen=True)
class ProxiedRequest:
    """One API request that went through a :class:`StripeProxy`."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


ProxyHook = Callable[[ProxiedRequest, httpx.Response], Awaitable[None]]


class StripeProxy:
    """An HTTP proxy in front of the emulator, for a gateway's ``STRIPE_API_BASE``.

    It records every request (headers and form body) and, after the emulator
    has answered a request but before that answer goes back, awaits
    ``after_upstream`` if set: the test can look at the database at the moment
    Stripe has done its part, or kill the gateway right then.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[ProxiedRequest] = []
        self.after_upstream: ProxyHook | None = None
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> StripeProxy:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=10)
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST", "DELETE"])])
        port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(500):
            if self._server.started:
                break
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("the Stripe proxy did not start")
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
        if self._client is not None:
            await self._client.aclose()

    def posts_to(self, path: str) -> list[ProxiedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    async def _forward(self, request: Request) -> Response:
        assert self._client is not None
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}}
        form = dict(parse_qsl(body.decode(), keep_blank_values=True)) if body else {}
        proxied = ProxiedRequest(request.method, request.url.path, headers, form)
        self.requests.append(proxied)
        upstream = await self._client.request(
            request.method, request.url.path, params=request.url.query, content=body, headers=headers
        )
        if self.after_upstream is not None:
            await self.after_upstream(proxied, upstream)
        passed = {k: v for k, v in upstream.headers.items() if k.lower() in {"content-type", "request-id"}}
        return Response(upstream.content, status_code=upstream.status_code, headers=passed)

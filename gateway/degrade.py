"""Degrading rather than falling over: what the gateway answers while a part
of it is down or not meant for production.

* The database unreachable (or an SQLite file locked by another process):
  GraphQL answers HTTP 503 with an ``INTERNAL`` error that says so and
  carries ``extensions.retryable: true``; never a plain-text 500.
* Redis down: every instance keeps serving (subscriptions fall back to
  polling), so ``/readyz`` stays 200 and reports ``"broadcast": "degraded"``;
  only the database decides readiness.
* Sandbox payments: ``/readyz`` says ``"payments": "sandbox"``, and a sandbox
  gateway listening beyond loopback logs a WARNING at start, so nobody takes
  it for a live deployment. ``/sandbox/authenticate`` is rate limited per
  client address.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.rate_limit import LocalRateLimiter, retry_after_seconds
from payments.sandbox import SandboxPaymentProvider
from schema.errors import UNAVAILABLE, is_retryable
from settings import RateLimit, Settings

__all__ = [
    "RETRY_AFTER_S",
    "SANDBOX_AUTHENTICATE_RATE",
    "SandboxAuthenticate",
    "listening_hosts",
    "readyz",
    "unavailable_response",
    "warn_if_sandbox_exposed",
    "with_unavailable_status",
]

log = logging.getLogger("gateway")

RETRY_AFTER_S = 2
SANDBOX_AUTHENTICATE_RATE = RateLimit(30, 60.0)


def unavailable_response() -> Response:
    """The database failed before GraphQL ran (signing the caller in)."""
    error = {"message": UNAVAILABLE, "extensions": {"code": "INTERNAL", "retryable": True}}
    return JSONResponse({"data": None, "errors": [error]}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def with_unavailable_status(response: Response, body: object) -> Response:
    """503 with Retry-After when an error of ``body`` says the database was unavailable."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and any(is_retryable(e) for e in errors):
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def readyz(request: Request) -> Response:
    """200 while the database answers (the broadcast may be degraded), else 503."""
    runtime = request.app.state.runtime
    database, broadcast = await runtime.db.ping(), await runtime.broadcast_healthy()
    body = {
        "status": "ready" if database else "unavailable",
        "database": database,
        "broadcast": "ok" if broadcast else "degraded",
        "payments": runtime.settings.payment_provider,
    }
    return JSONResponse(body, status_code=200 if database else 503)


class SandboxAuthenticate:
    """``POST /sandbox/authenticate``: finish a sandbox 3-D Secure challenge,
    as Stripe.js would with the order's ``clientSecret``:
    ``{"clientSecret": "...", "success": true}``. Rate limited per client
    address: it needs no token, and each call settles a payment."""

    def __init__(self, limit: RateLimit = SANDBOX_AUTHENTICATE_RATE) -> None:
        self.buckets = LocalRateLimiter(limit)

    async def handle(self, request: Request) -> Response:
        wait = self.buckets.take_now(request.client.host if request.client else "?", 1)
        if wait > 0:
            error = {"message": "Rate limit exceeded; retry later.", "extensions": {"code": "RATE_LIMITED"}}
            return JSONResponse(
                {"error": error["message"], "errors": [error]},
                status_code=429,
                headers={"Retry-After": str(retry_after_seconds(wait))},
            )
        provider = request.app.state.runtime.services.provider
        if not isinstance(provider, SandboxPaymentProvider):
            return JSONResponse({"error": "the sandbox provider is not in use"}, status_code=404)
        try:
            body = json.loads(await request.body())
            secret, success = body["clientSecret"], body.get("success", True)
            if not isinstance(secret, str) or not isinstance(success, bool):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"clientSecret": string, "success": boolean}'}, status_code=400)
        outcome = await provider.authenticate(client_secret=secret, success=success)
        if outcome is None:
            return JSONResponse({"error": "no payment awaits authentication with this client secret"}, status_code=404)
        return JSONResponse({"status": outcome.status.value})


def listening_hosts(settings: Settings, argv: Sequence[str] | None = None) -> list[str]:
    """The addresses this process listens on, as far as it can tell: ``HOST``
    (``partner-billing serve``, ``demo``) and ``--host`` on uvicorn's command
    line (the Procfile)."""
    argv = list(sys.argv if argv is None else argv)
    hosts = [settings.host]
    for index, arg in enumerate(argv):
        if arg == "--host" and index + 1 < len(argv):
            hosts.append(argv[index + 1])
        elif arg.startswith("--host="):
            hosts.append(arg.split("=", 1)[1])
    return hosts


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_sandbox_exposed(settings: Settings, argv: Sequence[str] | None = None) -> bool:
    """Log a WARNING when sandbox payments are served beyond loopback; True if so."""
    if settings.payment_provider != "sandbox":
        return False
    exposed = [host for host in listening_hosts(settings, argv) if not _is_loopback(host)]
    if not exposed:
        return False
    log.warning(
        "SANDBOX PAYMENTS on %s: no real money moves and any caller can approve a charge; "
        "set PAYMENT_PROVIDER=stripe for a live deployment",
        ", ".join(exposed),
    )
    return True

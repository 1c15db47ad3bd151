"""What every fuzz test asserts of the gateway, whatever it was sent: an
answer below 500 within the timeout, no ``INTERNAL`` error, every error with
one of the contract's codes, nothing of the server's insides in the body, no
error in the server's log, and ``/healthz`` still answering afterwards."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, settings

from tests.support.processes import GatewayProcess

__all__ = [
    "CODES",
    "REQUEST_TIMEOUT_S",
    "FuzzTarget",
    "Seeded",
    "assert_answer",
    "assert_errors",
    "deep",
    "encode",
    "error_codes",
    "fuzz",
]

# The contract's codes (README, "Error codes"); INTERNAL is a bug here.
CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "RATE_LIMITED", "QUERY_TOO_COMPLEX"})
# Generous on a loaded 2-core machine; a request stalling the server fails here.
REQUEST_TIMEOUT_S = 10.0
# FUZZ_SCALE=20 FUZZ_RANDOM=1 hunts longer and elsewhere than CI's fixed examples.
_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
_RANDOM = os.environ.get("FUZZ_RANDOM", "") == "1"
_DEEP = "\u0000deep:"
_DEEP_ENCODED = re.compile(r'"\\u0000deep:(\d+)"')
# What a body or a log line must never show.
_LEAKS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", "psycopg", "SELECT ", "INSERT ", "UPDATE ")
_LOG_PROBLEMS = re.compile(r'"level": "(ERROR|CRITICAL)"|Traceback|Exception in ASGI')


def fuzz(examples: int) -> settings:
    """Hypothesis settings for CI: a bounded count of the same examples every
    run (derandomized, no example database), no per-example deadline (the
    per-request timeout is the bound)."""
    return settings(
        max_examples=max(1, round(examples * _SCALE)),
        derandomize=not _RANDOM,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@dataclass(frozen=True, eq=False)  # hashed by identity: strategies are cached per seeding
class Seeded:
    """The rows the fuzz target was seeded with (see conftest)."""

    tokens: Mapping[str, str]
    customers: list[str]
    products: list[str]
    payment_methods: list[str]
    orders: list[str]
    # Another partner's customer and product: never visible to ``tokens``' partner.
    strangers: list[str]
    plans: list[str] = field(default_factory=lambda: ["plan_backup_essentials", "plan_storage_1tb", "plan_nope"])

    @property
    def ids(self) -> list[str]:
        return [*self.customers, *self.products, *self.payment_methods, *self.orders, *self.strangers, *self.plans]


class FuzzTarget:
    def __init__(self, process: GatewayProcess, seeded: Seeded) -> None:
        self.process = process
        self.seeded = seeded
        self.url = process.url
        self.ws_url = process.ws_url
        self.http = httpx.Client(base_url=process.url, timeout=REQUEST_TIMEOUT_S)

    def close(self) -> None:
        self.http.close()

    def post_json(self, body: object, token: str | None = None, **headers: str) -> httpx.Response:
        return self.http.post("/graphql", content=encode(body), headers=_headers(token, "application/json", headers))

    def post_raw(self, content: bytes, content_type: str | None, token: str | None = None) -> httpx.Response:
        return self.http.post("/graphql", content=content, headers=_headers(token, content_type, {}))

    @contextmanager
    def stays_healthy(self) -> Iterator[None]:
        """The block leaves no error in the server's log and /healthz answering."""
        start = len(self.process.log_text())
        yield
        problems = [line for line in self.process.log_text()[start:].splitlines() if _LOG_PROBLEMS.search(line)]
        assert not problems, "the gateway logged:\n" + "\n".join(problems[:10])
        started = time.monotonic()
        healthz = self.http.get("/healthz")
        assert healthz.status_code == 200 and healthz.json() == {"status": "ok"}, healthz.text
        assert time.monotonic() - started < REQUEST_TIMEOUT_S


def deep(levels: int) -> str:
    """A placeholder for ``[[[…]]]`` ``levels`` deep, which :func:`encode`
    expands in the text (``json.dumps`` itself cannot nest that deep)."""
    return f"{_DEEP}{levels}"


def encode(body: object) -> bytes:
    """``body`` as JSON text: non-ASCII escaped (lone surrogates as ``\\ud800``,
    as a client in another language may send them), NaN and Infinity as
    Python writes them, :func:`deep` placeholders expanded."""
    text = json.dumps(body, ensure_ascii=True, allow_nan=True)
    return _DEEP_ENCODED.sub(lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text).encode()


def _headers(token: str | None, content_type: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if content_type is not None:
        headers["content-type"] = content_type
    headers.update(extra)
    return headers


def error_codes(body: Any) -> list[Any]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [(e.get("extensions") or {}).get("code") for e in errors or ()]


def assert_errors(errors: object, context: object) -> None:
    """Each error (HTTP or WebSocket) is GraphQL-shaped with a contract code, none INTERNAL."""
    assert isinstance(errors, list), (errors, context)
    for error in errors:
        assert isinstance(error, dict) and isinstance(error.get("message"), str), (error, context)
        code = (error.get("extensions") or {}).get("code")
        assert code in CODES, (code, error, context)


def assert_answer(response: httpx.Response, context: object) -> Any:
    """The checks every HTTP answer passes; returns its JSON body (None if not JSON)."""
    assert response.status_code < 500, (response.status_code, response.text[:2000], context)
    for leak in _LEAKS:
        assert leak not in response.text, (leak, response.text[:2000], context)
    if response.request.method == "HEAD" or not response.headers.get("content-type", "").startswith("application/json"):
        return None
    body = response.json()
    if isinstance(body, dict) and "errors" in body:
        assert_errors(body["errors"], context)
    return body

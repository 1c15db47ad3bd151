"""GraphQL over HTTP with retries that are safe for purchases.

Every purchase carries an idempotency key, so sending it again after a
dropped connection or a timeout cannot charge twice: the gateway answers with
the order the first attempt made. That is what makes retrying a mutation whose
response never arrived the right thing to do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from bulk_orders.retry import RetryPolicy, retry_after

__all__ = ["GatewayClient", "GatewayUnreachable", "RequestRefused"]

log = logging.getLogger("bulk_orders")

# Worth another try: the request may pass later. Everything else the gateway
# refuses (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, ...) will be
# refused again.
_RETRY_STATUS = frozenset({429, 502, 503, 504})
_RETRY_CODES = frozenset({"RATE_LIMITED", "INTERNAL"})


class GatewayUnreachable(Exception):
    """No usable answer after every attempt."""


class RequestRefused(Exception):
    """The gateway refused the request with a top-level error."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class GatewayClient:
    """POSTs GraphQL documents to ``url`` as the holder of ``token``."""

    def __init__(self, url: str, token: str, policy: RetryPolicy, *, timeout_s: float = 30.0) -> None:
        self.url = url
        self.policy = policy
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(self, query: str, variables: dict[str, Any], *, what: str) -> dict[str, Any]:
        """``data`` of a successful answer; :class:`RequestRefused` or
        :class:`GatewayUnreachable` otherwise. ``what`` names the request in
        progress messages."""
        problem = "no attempt made"
        for attempt in range(1, self.policy.attempts + 1):
            wait: float | None = None
            try:
                response = await self._http.post(self.url, json={"query": query, "variables": variables})
            except httpx.RequestError as exc:
                # Including "server disconnected": the gateway may have acted.
                problem = f"{type(exc).__name__}: {exc or 'no detail'}"
            else:
                body = _json(response)
                errors = body.get("errors") if body is not None else None
                codes = _codes(errors)
                if response.status_code in _RETRY_STATUS or codes & _RETRY_CODES:
                    problem = f"HTTP {response.status_code}" + (f" {', '.join(sorted(codes))}" if codes else "")
                    wait = retry_after(errors, response.headers)
                    if wait is not None and wait > self.policy.max_retry_after_s:
                        raise GatewayUnreachable(f"{problem}: asked to wait {wait:.0f} s, more than allowed")
                elif body is None:
                    raise RequestRefused(
                        f"HTTP_{response.status_code}", f"not a GraphQL answer; is {self.url} the gateway's /graphql?"
                    )
                elif errors:
                    first = errors[0] if isinstance(errors[0], dict) else {}
                    code = (_codes([first]) or {f"HTTP_{response.status_code}"}).pop()
                    raise RequestRefused(code, str(first.get("message", "refused")))
                elif isinstance(body.get("data"), dict):
                    data: dict[str, Any] = body["data"]
                    return data
                else:
                    raise RequestRefused(f"HTTP_{response.status_code}", "the answer had no data")
            if attempt == self.policy.attempts:
                break
            delay = wait if wait is not None else self.policy.backoff(attempt)
            log.info(
                "%s: %s; trying again in %.1f s (attempt %d of %d)",
                what,
                problem,
                delay,
                attempt + 1,
                self.policy.attempts,
            )
            await asyncio.sleep(delay)
        raise GatewayUnreachable(f"{problem} (gave up after {self.policy.attempts} attempts)")


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _codes(errors: object) -> set[str]:
    if not isinstance(errors, list):
        return set()
    codes: set[str] = set()
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and isinstance(extensions.get("code"), str):
            codes.add(extensions["code"])
    return codes

"""CORS for browser clients on other origins (``ALLOWED_ORIGINS``).

A dashboard served from ``http://localhost:5173`` sends a preflight
``OPTIONS /graphql`` before each JSON POST with an ``Authorization`` header;
Starlette's ``CORSMiddleware`` answers it for the listed origins only and adds
``Access-Control-Allow-Origin`` to their real responses. Other origins get no
CORS header at all, so their pages cannot read the API's answers. Tokens travel
in ``Authorization``, never in cookies, so credentials are not allowed.

The WebSocket endpoint checks the same origins itself (Strawberry's
``allowed_origins``): browsers apply no CORS to a WebSocket handshake.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from settings import Settings

__all__ = ["CorsHeaders", "cors_middleware"]

# What a browser client sends and may read beyond the CORS-safelisted headers.
ALLOWED_REQUEST_HEADERS = ("authorization", "content-type", "x-request-id")
EXPOSED_RESPONSE_HEADERS = ("retry-after", "x-request-id")
PREFLIGHT_MAX_AGE_S = 600


def cors_middleware(settings: Settings) -> Middleware:
    """The middleware, to be the outermost one: refusals from inner layers
    (413, 429) must carry the CORS headers too, or the page cannot read why."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.allowed_origins),
        allow_methods=["GET", "POST"],
        allow_headers=list(ALLOWED_REQUEST_HEADERS),
        expose_headers=list(EXPOSED_RESPONSE_HEADERS),
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE_S,
    )


class CorsHeaders:
    """The headers ``cors_middleware`` adds to a simple (non-preflight)
    response, for the hot path that answers before the middleware runs."""

    def __init__(self, settings: Settings) -> None:
        self._allowed = {origin.encode() for origin in settings.allowed_origins}
        self._exposed = ", ".join(EXPOSED_RESPONSE_HEADERS).encode()

    def for_origin(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is None:
            return [(b"vary", b"Origin")]
        headers = [(b"access-control-expose-headers", self._exposed), (b"vary", b"Origin")]
        if origin in self._allowed:
            headers.insert(0, (b"access-control-allow-origin", origin))
        return headers

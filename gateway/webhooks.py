"""``POST /webhooks/stripe``: placeholder until the Stripe provider lands."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["stripe_webhook"]


async def stripe_webhook(request: Request) -> Response:
    return JSONResponse({"error": "Stripe webhooks are not configured"}, status_code=404)

"""``create_app()``: the Starlette application."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from gateway.cors import cors_middleware
from gateway.endpoint import GraphQLEndpoint
from gateway.graphiql import GraphiQLPage
from gateway.limits import BodySizeLimit
from gateway.runtime import Runtime, running
from gateway.schema import build_schema
from gateway.view import GraphQLView
from gateway.webhooks import stripe_webhook
from payments.sandbox import SandboxPaymentProvider
from settings import Settings, load_settings

__all__ = ["create_app"]


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    database, broadcast = await runtime.db.ping(), await runtime.broadcast_healthy()
    ready = database and broadcast
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "database": database, "broadcast": broadcast},
        status_code=200 if ready else 503,
    )


async def sandbox_authenticate(request: Request) -> Response:
    """Finish a sandbox 3-D Secure challenge, as Stripe.js would with the
    order's ``clientSecret``: ``{"clientSecret": "...", "success": true}``."""
    runtime: Runtime = request.app.state.runtime
    provider = runtime.services.provider
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


class GatewayApp(Starlette):
    """Starlette, with the hot path taken first: a JSON ``POST /graphql`` goes
    straight to :meth:`GraphQLEndpoint.serve_post`, which applies the CORS
    headers, body limit and rate limit the middleware stack would."""

    graphql: GraphQLEndpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.graphql.takes(scope):
            scope["app"] = self
            await self.graphql.serve_post(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> GatewayApp:
    settings = settings or load_settings()
    graphiql = GraphiQLPage(enabled=settings.graphiql)
    schema = build_schema(settings)
    view = GraphQLView(schema, graphiql=graphiql, allowed_origins=settings.allowed_origins)
    graphql = GraphQLEndpoint(schema, view, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings) as runtime:
            app.state.runtime = runtime
            yield

    app = GatewayApp(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/sandbox/authenticate", sandbox_authenticate, methods=["POST"]),
            *graphiql.routes(),
        ],
        middleware=[
            cors_middleware(settings),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.graphql = graphql
    return app

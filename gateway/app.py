"""``create_app()``: the Starlette application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from gateway.cors import cors_middleware
from gateway.degrade import SandboxAuthenticate, readyz, warn_if_sandbox_exposed
from gateway.graphiql import GraphiQLPage
from gateway.limits import BodySizeLimit, RateLimiter, RateLimits
from gateway.runtime import running
from gateway.schema import build_schema
from gateway.view import GraphQLView
from gateway.webhooks import stripe_webhook
from settings import Settings, load_settings

__all__ = ["create_app"]


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    rate_limits = RateLimits(settings.rate_limit)
    graphiql = GraphiQLPage(enabled=settings.graphiql)
    view = GraphQLView(
        build_schema(settings), rate_limits=rate_limits, graphiql=graphiql, allowed_origins=settings.allowed_origins
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings) as runtime:
            app.state.runtime = runtime
            warn_if_sandbox_exposed(settings)
            yield

    return Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/sandbox/authenticate", SandboxAuthenticate().handle, methods=["POST"]),
            *graphiql.routes(),
        ],
        middleware=[
            cors_middleware(settings),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
            Middleware(RateLimiter, limits=rate_limits),
        ],
        lifespan=lifespan,
    )

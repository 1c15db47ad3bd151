"""``create_app()``: the Starlette application."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.cors import cors_middleware
from gateway.degrade import SandboxAuthenticate, readyz, warn_if_sandbox_exposed
from gateway.endpoint import GraphQLEndpoint
from gateway.graphiql import GraphiQLPage
from gateway.limits import BodySizeLimit
from gateway.runtime import running
from gateway.schema import build_schema
from gateway.view import GraphQLView
from gateway.webhooks import stripe_webhook
from observability.metrics import metrics_endpoint, process_exiting
from observability.middleware import RequestContext, request_id_of
from observability.requests import bind_request_id, reset_request_id
from observability.tracing import start_tracing
from settings import Settings, load_settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class GatewayApp(Starlette):
    """Starlette, with the hot paths taken first: a JSON ``POST /graphql`` goes
    straight to :meth:`GraphQLEndpoint.serve_post`, which applies the request
    id, CORS headers, body limit and rate limit the middleware stack would; a
    WebSocket to ``/graphql`` goes to Strawberry's view with only its request
    id around it (no other middleware applies to a WebSocket, and each of its
    messages would otherwise pass through every layer's wrapper)."""

    graphql: GraphQLEndpoint
    subscriptions: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/graphql":
            scope["app"] = self
            await self.subscriptions(scope, receive, send)
            return
        if self.graphql.takes(scope):
            scope["app"] = self
            request_id = request_id_of(scope)
            token = bind_request_id(request_id)
            try:
                await self.graphql.serve_post(scope, receive, send, request_id=request_id)
            finally:
                reset_request_id(token)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> GatewayApp:
    settings = settings or load_settings()
    graphiql = GraphiQLPage(enabled=settings.graphiql)
    tracing = start_tracing(endpoint=settings.otel_exporter_otlp_endpoint) if settings.tracing else None
    schema = build_schema(settings, extra_extensions=(tracing.extension,) if tracing else ())
    view = GraphQLView(
        schema, graphiql=graphiql, allowed_origins=settings.allowed_origins, live_delivery=tracing is None
    )
    # Traced operations go through Strawberry's extensions (OpenTelemetry's among them).
    graphql = GraphQLEndpoint(schema, view, settings, hot_path=tracing is None)
    metrics = metrics_endpoint(settings.metrics_token, multiprocess_dir=settings.prometheus_multiproc_dir)
    if settings.web_concurrency > 1 and settings.prometheus_multiproc_dir is None:
        log.warning("WEB_CONCURRENCY > 1 without PROMETHEUS_MULTIPROC_DIR: a /metrics scrape shows one worker's share")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with running(settings) as runtime:
                app.state.runtime = runtime
                warn_if_sandbox_exposed(settings)
                settle_garbage_collection()
                yield
        finally:
            if tracing is not None:
                tracing.shutdown()  # sends the spans still buffered
            process_exiting(settings.prometheus_multiproc_dir)

    app = GatewayApp(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/sandbox/authenticate", SandboxAuthenticate().handle, methods=["POST"]),
            *graphiql.routes(),
        ],
        middleware=[
            # Outermost: every answer, inner refusals included, has X-Request-ID.
            Middleware(RequestContext),
            cors_middleware(settings),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.graphql = graphql
    app.subscriptions = RequestContext(view)
    return app


def settle_garbage_collection() -> None:
    """After startup, leave the collector only what requests and sockets make.

    Everything built so far (modules, the schema, plans of the catalogue) lives
    as long as the process: ``gc.freeze`` moves it out of the collector's sight,
    so full collections stop walking it again and again. The thresholds trade
    a little memory for far fewer collections: a request or a fan-out makes
    thousands of short-lived objects, nearly all freed by reference counting,
    and with CPython's default (700, 10, 10) a full collection over every live
    subscriber's objects came every few events (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, 20, 50)


_GC_YOUNG_THRESHOLD = 20_000

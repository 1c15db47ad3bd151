"""The GraphQL endpoint: HTTP, GraphiQL and WebSocket subscriptions."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from auth.principal import authenticate
from gateway import jsonio
from gateway.degrade import unavailable_response, with_unavailable_status
from gateway.graphiql import GraphiQLPage
from gateway.runtime import Runtime
from gateway.schema import GatewaySchema
from gateway.sockets import LegacyWSHandler, SocketAdapter, TokenRefused, TransportWSHandler, take_socket_slot
from models.database import DatabaseUnavailable
from schema.context import Context
from schema.errors import classify_errors

__all__ = ["GraphQLView"]


def _runtime(request: Request | WebSocket) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class GraphQLView(GraphQL[Context, None]):
    schema: GatewaySchema
    # Sockets close with 4401 on a refused or revoked token (gateway.sockets).
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    # Close reasons cut to what a close frame holds (gateway.sockets).
    websocket_adapter_class = SocketAdapter

    def __init__(
        self,
        schema: Any,
        *,
        graphiql: GraphiQLPage,
        allowed_origins: tuple[str, ...] = (),
        live_delivery: bool = True,
    ) -> None:
        self.graphiql = graphiql
        # Live subscriptions sent without Strawberry's per-subscriber stream
        # (gateway.live); off when Strawberry's extensions must see every
        # result (tracing).
        self.live_delivery = live_delivery
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            # uvicorn pings every WebSocket (ws_ping_interval, 20 s) and drops the
            # dead ones; a keep-alive task per connection would only cost memory.
            keep_alive=False,
            # WebSocket handshakes from other origins' pages are refused (403)
            # unless listed; same-origin pages (GraphiQL) and clients sending
            # no Origin (scripts) are judged by their token alone.
            allowed_origins=allowed_origins,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return self.graphiql.render(request)

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        # Malformed requests (bad JSON, batches, mutations over GET) get a
        # GraphQL-shaped JSON error rather than a bare text body.
        try:
            return await super().run(request)
        except DatabaseUnavailable:
            # Signing the caller in needs the database: 503, retryable.
            return unavailable_response()
        except HTTPException as exc:
            error = {"message": exc.reason, "extensions": {"code": "BAD_USER_INPUT"}}
            # jsonio, not JSONResponse: the reason may quote the client's text,
            # lone surrogates included (an operationName), which UTF-8 cannot hold.
            body = jsonio.dumps({"data": None, "errors": [error]})
            return Response(body, status_code=exc.status_code, media_type="application/json")

    def decode_json(self, data: str | bytes) -> object:
        return jsonio.loads(data)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket messages must be text frames.
        return jsonio.dumps(data).decode()

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        return with_unavailable_status(super().create_response(response_data, sub_response), response_data)

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return parsed

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Errors raised before execution (syntax errors) bypass the schema
        # extensions; classify them here too.
        if result.errors:
            result.errors = classify_errors(result.errors)
        return process_result(result)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        runtime = _runtime(request)
        db = runtime.db.connection()
        principal = None
        if isinstance(request, Request):
            authorization = request.headers.get("authorization")
            principal = await authenticate(db, authorization)
            if principal is not None:
                runtime.usage.seen(principal.token_id)
        return Context(
            services=runtime.services,
            hub=runtime.hub,
            settings=runtime.settings,
            request=request,
            db=db,
            cursors=runtime.cursors,
            principal=principal,
            response=response if isinstance(request, Request) else None,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Sign in from ``connection_init`` (or the upgrade request's header);
        a missing, bad, revoked or expired token closes the socket with 4401,
        one more than ``MAX_CONNECTIONS_PER_TOKEN`` for its token with 4429."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        authorization = params.get("Authorization") or params.get("authorization")
        if authorization is None:
            authorization = context.request.headers.get("authorization")
        context.principal = await authenticate(context.db, authorization)
        if context.principal is None:
            raise TokenRefused("Missing or invalid API token.")
        _runtime(context.request).usage.seen(context.principal.token_id)
        await take_socket_slot(context, context.principal.token_id)
        return await super().on_ws_connect(context)

"""``/graphql``: the hot path for JSON POSTs, Strawberry's view for the rest.

Nearly every request a dashboard or a script sends is ``POST /graphql`` with a
JSON body. :class:`gateway.app.GatewayApp` hands those to
:meth:`GraphQLEndpoint.serve_post` before Starlette's middleware stack, so
little stands between the socket and the resolvers: the body is read within
``MAX_BODY_BYTES`` and decoded with orjson, the query text is looked up in the
schema's :class:`schema.documents.DocumentCache` (parsed, limit-checked and
validated once per distinct text), the caller is read with one statement, the
rate limit is applied, and the operation runs from its compiled plan
(:mod:`gateway.compiled`; graphql-core for what the planner leaves to it) with
the context and resolvers Strawberry would use. CORS headers are those the
middleware would add.

Everything else at ``/graphql`` (GraphiQL, queries over GET, other content
types, WebSockets) goes to Strawberry's view, through the middleware, with
the same document cache, rate limit and error codes as extensions.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
)
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from strawberry.execution.is_awaitable import optimized_is_awaitable

from auth.principal import authenticate
from gateway import jsonio
from gateway.compiled import OperationPlan, Unsupported, plan_operation, run_plan
from gateway.cors import CorsHeaders
from gateway.degrade import RETRY_AFTER_S
from gateway.rate_limit import operation_cost, rate_key, retry_after_seconds
from gateway.runtime import Runtime
from gateway.schema import GatewaySchema
from gateway.view import GraphQLView
from models.database import DatabaseUnavailable
from observability.metrics import operation_finished
from observability.operations import outcome_of
from observability.requests import REQUEST_ID_HEADER
from schema.context import Context
from schema.errors import UNAVAILABLE, classify_errors, is_retryable, log_unexpected
from settings import Settings
from subscriptions.multiplex import MultiplexingExecutor

__all__ = ["GraphQLEndpoint"]

log = logging.getLogger("gateway.errors")

_JSON = (b"content-type", b"application/json")
# Plans are kept for this many distinct operations of short documents.
_PLANS = 512
_PLANNED_LENGTH = 4096
# Strawberry's cheaper check, as Strawberry's own execution passes it.
_IS_AWAITABLE: Any = optimized_is_awaitable


class _Refused(Exception):
    """The request is answered with one top-level error and no execution."""

    def __init__(self, message: str, *, status: int = 400, code: str = "BAD_USER_INPUT", **extensions: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"message": message, "extensions": {"code": code, **extensions}}
        self.headers: list[tuple[bytes, bytes]] = []


class GraphQLEndpoint:
    """``/graphql``: :meth:`serve_post` for JSON POSTs; an ASGI app (the view) for the rest."""

    def __init__(self, schema: GatewaySchema, view: GraphQLView, settings: Settings, *, hot_path: bool = True) -> None:
        self.schema = schema
        self.view = view
        # Off when Strawberry's extensions must see every operation (tracing).
        self.hot_path = hot_path
        self.max_body_bytes = settings.max_body_bytes
        self.cors = CorsHeaders(settings)
        self._plans: dict[tuple[str, str | None], OperationPlan | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.view(scope, receive, send)

    def takes(self, scope: Scope) -> bool:
        """Whether ``scope`` is a request for :meth:`serve_post`."""
        return (
            self.hot_path
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/graphql"
            and (_header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower() == b"application/json"
        )

    async def serve_post(self, scope: Scope, receive: Receive, send: Send, *, request_id: str) -> None:
        headers = self.cors.for_origin(_header(scope, b"origin"))
        headers.append((REQUEST_ID_HEADER, request_id.encode()))
        try:
            query, variables, operation_name = _envelope(await self._body(scope, receive))
            status, payload = await self._execute(scope, receive, query, variables, operation_name)
        except _Refused as refused:
            status, payload = refused.status, {"data": None, "errors": [refused.error]}
            headers += refused.headers
        except DatabaseUnavailable as exc:
            # Expected while the database is down: one line, no traceback.
            log.warning("database unavailable: %s", exc)
            status, payload = 503, _internal(UNAVAILABLE, request_id, retryable=True)
        except Exception:
            log.exception("unexpected error serving POST /graphql")
            status, payload = 500, _internal("Internal error.", request_id)
        if status == 503 or (status == 200 and any(map(is_retryable, payload.get("errors", ())))):
            # The database failed mid-operation: the client should retry.
            status = 503
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        body = jsonio.dumps(payload)
        headers += [_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused("The client went away before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _execute(
        self, scope: Scope, receive: Receive, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        prepared = self.schema.documents.get(query)
        if prepared.errors or prepared.document is None:
            return 200, _response(ExecutionResult(None, list(prepared.errors)), "unknown", started)
        document = prepared.document
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            raise _Refused(_no_operation(document.definitions, operation_name))
        if operation.operation is OperationType.SUBSCRIPTION:
            error = GraphQLError("Subscriptions run over WebSocket (graphql-transport-ws) at /graphql.")
            error.extensions = {"code": "BAD_USER_INPUT"}
            return 200, _response(ExecutionResult(None, [error]), "subscription", started)

        runtime: Runtime = scope["app"].state.runtime
        db = runtime.db.connection()
        authorization = _header(scope, b"authorization")
        principal = await authenticate(db, authorization.decode("latin-1") if authorization else None)
        if principal is not None:
            runtime.usage.seen(principal.token_id)
        limiter = runtime.rate_limiter
        if limiter is not None:
            client = scope.get("client") or ("?", 0)
            wait = await limiter.take(rate_key(principal, str(client[0])), operation_cost(document, operation))
            if wait > 0:
                raise _rate_limited(wait)
        context = Context(
            services=runtime.services,
            hub=runtime.hub,
            settings=runtime.settings,
            request=Request(scope, receive),
            db=db,
            cursors=runtime.cursors,
            principal=principal,
        )
        plan = self._plan(query, document, operation_name)
        if plan is not None:
            result = await run_plan(plan, context, variables)
        else:
            executed = execute(
                self.schema._schema,
                document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                executor_class=MultiplexingExecutor,
                is_awaitable=_IS_AWAITABLE,
            )
            result = executed if isinstance(executed, ExecutionResult) else await executed
        assert isinstance(result, ExecutionResult)
        if result.errors:
            log_unexpected(result.errors, None)
        return 200, _response(result, operation.operation.value, started)

    def _plan(self, query: str, document: DocumentNode, operation_name: str | None) -> OperationPlan | None:
        """The operation's plan, made once; None when graphql-core must run it."""
        key = (query, operation_name)
        if key in self._plans:
            return self._plans[key]
        try:
            plan: OperationPlan | None = plan_operation(self.schema._schema, document, operation_name)
        except Unsupported:
            plan = None
        if len(query) <= _PLANNED_LENGTH:
            if len(self._plans) >= _PLANS:
                self._plans.clear()  # a flood of distinct documents: start over
            self._plans[key] = plan
        return plan


def _response(result: ExecutionResult, operation_type: str, started: float) -> dict[str, Any]:
    """The response body, with the operation counted and timed."""
    payload: dict[str, Any] = {"data": result.data}
    errors = classify_errors(result.errors) if result.errors else None
    if errors:
        payload["errors"] = [error.formatted for error in errors]
    operation_finished(operation_type, outcome_of(errors), time.perf_counter() - started)
    return payload


def _internal(message: str, request_id: str, **extensions: Any) -> dict[str, Any]:
    error = {"message": message, "extensions": {"code": "INTERNAL", "requestId": request_id, **extensions}}
    return {"data": None, "errors": [error]}


def _too_large(limit: int) -> _Refused:
    return _Refused(f"Request body exceeds {limit} bytes.", status=413)


def _rate_limited(wait: float) -> _Refused:
    seconds = retry_after_seconds(wait)
    refused = _Refused("Rate limit exceeded; retry later.", status=429, code="RATE_LIMITED", retryAfter=seconds)
    refused.headers.append((b"retry-after", str(seconds).encode()))
    return refused


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _envelope(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        request = jsonio.loads(body)
    except ValueError:
        raise _Refused("The request body is not valid JSON.") from None
    if isinstance(request, list):
        raise _Refused("Batches are not supported: send one operation per request.")
    if not isinstance(request, dict):
        raise _Refused("The request body must be a JSON object.")
    query, variables = request.get("query"), request.get("variables")
    operation_name, extensions = request.get("operationName"), request.get("extensions")
    if not isinstance(query, str) or not query.strip():
        raise _Refused("No GraphQL query found in the request.")
    if variables is not None and not isinstance(variables, dict):
        raise _Refused("`variables` must be a JSON object.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _Refused("`operationName` must be a string.")
    if extensions is not None and not isinstance(extensions, dict):
        raise _Refused("`extensions` must be a JSON object.")
    return query, variables, operation_name


def _no_operation(definitions: Any, operation_name: str | None) -> str:
    if operation_name is not None:
        return f"Unknown operation named '{operation_name}'."
    if not any(isinstance(d, OperationDefinitionNode) for d in definitions):
        return "The document has no operation to run."
    return "Must provide operationName if query contains multiple operations."

"""How errors reach clients: every top-level error carries ``extensions.code``;
expected ones keep their message, anything unexpected becomes INTERNAL with no
trace, SQL or detail (those go to the log, once, with the request id that the
error carries as ``extensions.requestId``). A database that cannot be reached
(or an SQLite file another process keeps locked) is INTERNAL too, the
contract's codes being fixed, but says so and carries ``retryable: true``;
over HTTP the answer is then a 503 with Retry-After (``gateway.degrade``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLSyntaxError
from starlette.websockets import WebSocket
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionContext
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

if TYPE_CHECKING:
    from strawberry.types import StreamExecutionResult

from billing.errors import BadUserInput, GatewayError, RateLimited, UserErrors
from models.database import DatabaseUnavailable
from observability.requests import current_request_id

__all__ = [
    "UNAVAILABLE",
    "ErrorCodes",
    "ErrorCodingRunner",
    "SubscriptionsOverWebSocketOnly",
    "classify_errors",
    "is_retryable",
    "is_unexpected",
    "log_unexpected",
]

log = logging.getLogger("gateway.errors")

# graphql-core's parser refusals: more tokens than MAX_TOKENS, or nesting
# deeper than its own recursion guard.
_PARSER_LIMITS = ("tokens. Parsing aborted", "nested too deeply")
_VALIDATION_ABORTED = "Validation aborted."
UNAVAILABLE = "The database is unavailable; retry shortly."


# Strawberry's refusals of an operation before it runs (see _classify).
_REFUSED_BY_STRAWBERRY = (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError)
_EXPECTED = (GatewayError, UserErrors, GraphQLError, DatabaseUnavailable, *_REFUSED_BY_STRAWBERRY)


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, _EXPECTED)


def is_retryable(error: object) -> bool:
    """A formatted error saying "retry": the database was unavailable."""
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return isinstance(extensions, dict) and extensions.get("retryable") is True


def _classify(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = error.message
    if isinstance(original, GatewayError):
        extensions["code"] = original.code
        if isinstance(original, RateLimited):
            extensions["retryAfter"] = original.retry_after
    elif isinstance(original, UserErrors):
        # A summary query reports what the mutation would put in userErrors.
        first = original.errors[0]
        extensions["code"] = "NOT_FOUND" if first.code.endswith("_NOT_FOUND") else "BAD_USER_INPUT"
        extensions["reason"] = first.code
        if first.field:
            extensions["field"] = list(first.field)
    elif isinstance(original, _REFUSED_BY_STRAWBERRY):
        # The operation cannot run as sent: no query, an unknown operation
        # name, or a query or mutation over graphql-ws (Strawberry runs
        # subscriptions only there). The client's to fix, not a fault.
        extensions = {"code": "BAD_USER_INPUT"}
        if isinstance(original, InvalidOperationTypeError):
            message = f"{message} over graphql-ws, which runs subscriptions only (graphql-transport-ws runs all)."
    elif isinstance(original, DatabaseUnavailable):
        extensions = {"code": "INTERNAL", "retryable": True}
        message = UNAVAILABLE
    elif original is not None and not isinstance(original, GraphQLError):
        extensions = {"code": "INTERNAL"}
        # The request id finds this request's log line (with the traceback).
        request_id = current_request_id()
        if request_id is not None:
            extensions["requestId"] = request_id
        message = "Internal error."
    elif "code" not in extensions:
        too_many_tokens = isinstance(error, GraphQLSyntaxError) and any(m in error.message for m in _PARSER_LIMITS)
        # graphql-core stops validating after too many errors ("Validation aborted").
        too_many_errors = error.message.endswith(_VALIDATION_ABORTED)
        extensions["code"] = "QUERY_TOO_COMPLEX" if too_many_tokens or too_many_errors else "BAD_USER_INPUT"
    return GraphQLError(
        message, error.nodes, error.source, error.positions, error.path, original_error=None, extensions=extensions
    )


def classify_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    return [_classify(e) for e in errors]


class SubscriptionsOverWebSocketOnly(SchemaExtension):
    """Refuse a subscription sent over plain HTTP (it would run as a query
    and answer null) with a clear BAD_USER_INPUT."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        over_websocket = isinstance(getattr(context, "request", None), WebSocket)
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION and not over_websocket:
            raise BadUserInput("Subscriptions run over WebSocket (graphql-transport-ws) at /graphql.")
        yield


class ErrorCodes(SchemaExtension):
    """Codes for an operation's errors; a subscription's results get theirs
    from :class:`ErrorCodingRunner`."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = classify_errors(errors)


class ErrorCodingRunner(SchemaExtensionsRunner):
    """Strawberry's extension runner, giving each subscription result's errors
    their codes itself. As an extension hook, that would cost a context
    manager built per result per subscriber (a fan-out to thousands pays it
    thousands of times per event), and asking every extension for results
    no extension of the gateway has would cost a loop more."""

    def __init__(self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None) -> None:
        super().__init__(execution_context, extensions)
        self._stream_hooks = any(_overrides(e, "on_stream_result") for e in self.extensions)
        self._with_results = [e for e in self.extensions if _overrides(e, "get_results")]

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = classify_errors(errors)  # type: ignore[union-attr]
        if self._stream_hooks:  # e.g. tracing's
            return super().on_stream_result(result)
        return _NO_HOOKS

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._with_results:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


def _overrides(extension: SchemaExtension, hook: str) -> bool:
    return getattr(type(extension), hook) is not getattr(SchemaExtension, hook)


class _NoHooks(StreamResultContextManager):
    """No hooks to run: entering and leaving keep no state, so one serves every result."""

    def __init__(self) -> None:
        super().__init__([], None)  # type: ignore[arg-type]

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


_NO_HOOKS = _NoHooks()


def log_unexpected(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    for error in errors:
        if isinstance(error.original_error, DatabaseUnavailable):
            # An outage, not a bug: one line, no traceback.
            log.warning("database unavailable in %s: %s", error.path, error.original_error)
        elif is_unexpected(error):
            log.error("unexpected error in %s", error.path, exc_info=error.original_error)

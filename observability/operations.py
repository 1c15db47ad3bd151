"""``OperationObserver``: the Strawberry extension that counts, times and
logs each GraphQL operation, and gives each WebSocket operation its own
request id.

Over HTTP the request's id (bound by :class:`~observability.middleware.RequestContext`)
already names the operation. Over WebSocket one connection carries many
operations, each run by Strawberry in a task of its own: the extension binds a
fresh id in that task, so the operation's log lines (and an ``INTERNAL``
error's ``requestId``) name it, and logs one line when it ends, with the
connection's id beside it.

List it before the extension that classifies errors (``schema.errors.ErrorCodes``):
extensions finish in reverse order, so by the time this one looks, each
error carries its ``extensions.code``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from observability import metrics
from observability.requests import bind_request_id, current_request_id, new_request_id, reset_request_id

__all__ = ["OperationObserver", "observe_operations", "operation_finished_over", "outcome_of"]

log = logging.getLogger("gateway.operations")

INTERNAL = "INTERNAL"


def outcome_of(errors: Sequence[GraphQLError] | None) -> str:
    """``ok``, or the code of the first error (``INTERNAL`` if any error is)."""
    if not errors:
        return "ok"
    codes = [(error.extensions or {}).get("code") for error in errors]
    if INTERNAL in codes:
        return INTERNAL
    first = codes[0]
    return first if isinstance(first, str) else "UNKNOWN"


Classify = Callable[[list[GraphQLError]], list[GraphQLError]]


def operation_finished_over(
    operation_type: str,
    operation_name: str | None,
    outcome: str,
    seconds: float,
    *,
    websocket: bool,
    connection_id: str | None,
) -> None:
    """Count and time an operation; one over WebSocket is also logged, under
    its own request id (bound in the current context) with its connection's
    (``connection_id``) beside it."""
    metrics.operation_finished(operation_type, outcome, seconds)
    if websocket:
        log.info(
            "%s %s over websocket: %s",
            operation_type,
            operation_name or "(anonymous)",
            outcome,
            extra={
                "connection_id": connection_id,
                "operation_type": operation_type,
                "operation_name": operation_name,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 3),
            },
        )


class OperationObserver(SchemaExtension):
    """Build it with :func:`observe_operations`."""

    # How the gateway gives errors their codes, for an exception that ends
    # the operation before a result exists (Strawberry makes the result
    # from it after the extensions have finished).
    classify: ClassVar[Classify]
    _subscribed = False

    def _operation_type(self) -> str:
        try:
            operation_type = self.execution_context.operation_type
        except Exception:  # no document, or it names no operation: nothing was run
            return "unknown"
        return str(operation_type.value)

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        context: Any = self.execution_context.context
        over_websocket = isinstance(getattr(context, "request", None), WebSocket)
        connection_id = current_request_id()
        token = bind_request_id(new_request_id()) if over_websocket else None
        raised: Exception | None = None
        try:
            yield
        except Exception as exc:
            raised = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            if self._subscribed:
                metrics.subscription_ended()
            operation_type = self._operation_type()
            if raised is not None:
                error = raised if isinstance(raised, GraphQLError) else GraphQLError(str(raised), original_error=raised)
                outcome = outcome_of(type(self).classify([error]))
            else:
                outcome = outcome_of(getattr(self.execution_context.result, "errors", None))
            operation_finished_over(
                operation_type,
                self.execution_context.operation_name,
                outcome,
                seconds,
                websocket=token is not None,
                connection_id=connection_id,
            )
            if token is not None:
                with contextlib.suppress(ValueError):  # finalised outside its task: nothing to undo
                    reset_request_id(token)

    def on_execute(self) -> Iterator[None]:
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION and not self._subscribed:
            self._subscribed = True
            metrics.subscription_started()
        yield


def observe_operations(classify: Classify) -> type[OperationObserver]:
    """The extension, with the gateway's error classification."""
    return type("GatewayOperationObserver", (OperationObserver,), {"classify": staticmethod(classify)})

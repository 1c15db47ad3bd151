"""Live subscriptions over graphql-transport-ws, without Strawberry's per-subscriber stream.

A ``subscribe`` whose document is valid and selects only ``orderStatusChanged``
(a dashboard's live feed: the subscription thousands of sockets hold at once)
is run here instead of by Strawberry's operation loop: the same document
cache, rate limit, resolver (its checks, its refusals as an ``error``
message), metrics and log line, but its events are sent by
:func:`subscriptions.live.deliver`, one shared encoded payload per event and
distinct subscription. Anything else (other fields, documents with errors,
queries and mutations over the socket, the older graphql-ws protocol) goes
the usual way, which gives the same answers.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import DocumentNode, ExecutionResult, FieldNode, GraphQLError, OperationType, get_operation_ast
from graphql.execution import create_source_event_stream

from gateway.rate_limit import rate_limit_refusal
from observability import metrics
from observability.operations import operation_finished_over, outcome_of
from observability.requests import bind_request_id, current_request_id, new_request_id, reset_request_id
from schema.context import Context
from schema.documents import DocumentCache
from schema.errors import classify_errors, log_unexpected
from subscriptions.live import LiveStream, deliver, shared_executor
from subscriptions.multiplex import MultiplexingExecutor

__all__ = ["LIVE_FIELDS", "live_document", "run_live"]

# Root fields whose resolver returns a subscriptions.live.LiveStream.
LIVE_FIELDS = frozenset({"orderStatusChanged"})


def live_document(documents: DocumentCache, query: str, operation_name: str | None) -> DocumentNode | None:
    """The document, if it is a valid subscription of one live field (no
    directive on it); None for anything else. A text too long for the cache
    is left to Strawberry's path at once: asked here too, it would be parsed
    and validated twice (a live feed's document is short)."""
    if not documents.cacheable(query):
        return None
    prepared = documents.get(query)
    if prepared.document is None or prepared.errors:
        return None
    operation = get_operation_ast(prepared.document, operation_name)
    if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1:
        return None
    field = selections[0]
    if not isinstance(field, FieldNode) or field.directives or field.name.value not in LIVE_FIELDS:
        return None
    return prepared.document


async def run_live(
    schema: Any,
    context: Context,
    document: DocumentNode,
    *,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    send_errors: Callable[[list[GraphQLError]], Awaitable[None]],
    send_payload: Callable[[str], Awaitable[None]],
    encode: Callable[[object], str],
) -> None:
    """Run one live subscription until cancelled (the client completes it or
    leaves); a refusal is sent with ``send_errors`` and ends it. ``schema``
    is graphql-core's schema of the gateway's Strawberry schema."""
    started = time.perf_counter()
    connection_id = current_request_id()
    request_id = bind_request_id(new_request_id())
    outcome, subscribed = "ok", False
    try:
        errors, stream, executor = await _start(schema, context, document, variables, operation_name)
        if errors:
            outcome = outcome_of(errors)
            await send_errors(errors)
            return
        assert stream is not None and executor is not None
        metrics.subscription_started()
        subscribed = True
        # At once: deliver gives the shared executor back however it ends.
        await deliver(stream, executor, send_payload, encode)
    except Exception as exc:
        outcome = outcome_of(classify_errors([GraphQLError(str(exc), original_error=exc)]))
        raise
    finally:
        if subscribed:
            metrics.subscription_ended()
        seconds = time.perf_counter() - started
        operation_finished_over(
            "subscription", operation_name, outcome, seconds, websocket=True, connection_id=connection_id
        )
        with contextlib.suppress(ValueError):  # finalised outside its task: nothing to undo
            reset_request_id(request_id)


async def _start(
    schema: Any,
    context: Context,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> tuple[list[GraphQLError], LiveStream[Any] | None, MultiplexingExecutor | None]:
    """The refusal's coded errors, or the stream and its executor."""
    refusal = await rate_limit_refusal(context, document, operation_name)
    if refusal is not None:
        return [refusal], None, None
    executor = MultiplexingExecutor.build(
        schema, document, context_value=context, raw_variable_values=variables, operation_name=operation_name
    )
    if isinstance(executor, list):
        return classify_errors(executor), None, None
    stream = create_source_event_stream(executor)
    if inspect.isawaitable(stream):  # the resolver is a coroutine
        stream = await stream
    if isinstance(stream, ExecutionResult):
        errors = list(stream.errors or ())
        log_unexpected(errors, None)
        return classify_errors(errors), None, None
    if not isinstance(stream, LiveStream):
        raise TypeError(f"{LIVE_FIELDS} must return a LiveStream, not {type(stream).__name__}")
    assert isinstance(executor, MultiplexingExecutor)
    # From here on the subscriber holds only the shared executor.
    return [], stream, shared_executor(stream, executor)

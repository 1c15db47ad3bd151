"""Resolve each live event once per distinct subscription, not once per subscriber.

Every subscriber of this process receives the same payload object for a live
event (see ``events.hub.Delivery``). When two subscribers sent the same
document with the same variables, under the same partner and role, the
GraphQL result for that event is the same for both: the first to need it
executes the selection set and the others share its result, as Hasura
multiplexes live queries. The cache is the payload's own ``shared`` mapping,
so it lives exactly as long as the event is being delivered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Hashable
from typing import Any

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

__all__ = ["MultiplexingExecutor"]


class _Shared:
    """What ``execute_subscription_event`` needs of a per-event executor when
    the event's result is already known: no copy of the executor is made."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return self.result

    @staticmethod
    def is_awaitable(value: Any) -> bool:
        return not isinstance(value, ExecutionResult)


class MultiplexingExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, sharing per-event results between subscribers."""

    _key: Hashable | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        shared: dict[Any, Any] | None = getattr(payload, "shared", None)
        if shared is not None:
            found = shared.get(self.result_key)
            if isinstance(found, ExecutionResult):
                return _Shared(found)
            if found is not None:
                return _Shared(asyncio.shield(found))
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        shared: dict[Any, Any] | None = getattr(self.root_value, "shared", None)
        if shared is None:
            return super().execute_operation(serially)
        key = self.result_key
        found = shared.get(key)
        if found is None:
            result = super().execute_operation(serially)
            if not self.is_awaitable(result):
                shared[key] = result
                return result
            found = shared[key] = asyncio.ensure_future(_awaited(result))
        if isinstance(found, ExecutionResult):
            return found
        # Shielded: one subscriber leaving must not cancel what the others await.
        return asyncio.shield(found)

    @property
    def result_key(self) -> Hashable:
        """What makes two subscriptions' results for one event the same (computed
        once per subscription: per-event executors are copies carrying it)."""
        key = self._key
        if key is None:
            key = self._key = self._compute_key()
        return key

    def _compute_key(self) -> Hashable:
        operation = self.operation
        source = operation.loc.source.body if operation.loc is not None else id(operation)
        principal = getattr(self.context_value, "principal", None)
        return (
            "result",
            source,
            operation.name.value if operation.name else None,
            json.dumps(self.variable_values.coerced, sort_keys=True, default=str),
            getattr(principal, "partner_id", None),
            getattr(principal, "role", None),
        )


async def _awaited(result: Awaitable[ExecutionResult]) -> ExecutionResult:
    return await result

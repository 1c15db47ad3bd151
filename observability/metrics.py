"""The gateway's Prometheus metrics and their ``GET /metrics`` endpoint.

Recording is a dictionary lookup and ``Counter.inc`` / ``Histogram.observe``
(a lock and an addition): cheap enough for every request. Labels come from
small fixed sets (operation types, error codes, order kinds and statuses,
webhook outcomes), never from ids or client input, so series stay few.

Several worker processes (``WEB_CONCURRENCY`` > 1) each count on their own;
a scrape reaches one of them. With ``PROMETHEUS_MULTIPROC_DIR`` set to an
empty directory, prometheus-client keeps every worker's values in files there
and ``/metrics`` adds them up (see docs/deploy.md, "Metrics").
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "OPERATION_TYPES",
    "WEBHOOK_OUTCOMES",
    "declare_order_labels",
    "metrics_endpoint",
    "operation_finished",
    "order_status_changed",
    "process_exiting",
    "registry_output",
    "subscription_ended",
    "subscription_started",
    "webhook_delivered",
]

OPERATION_TYPES = ("query", "mutation", "subscription")

# No `*_created` series (a timestamp per label set): they double the output
# and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_OPERATIONS = Counter(
    "pbg_graphql_operations_total",
    "GraphQL operations finished, by type (query, mutation, subscription, unknown when the document "
    "named none) and outcome (ok, or the first error's extensions.code; INTERNAL when any error was).",
    ["type", "outcome"],
)
_OPERATION_SECONDS = Histogram(
    "pbg_graphql_operation_seconds",
    "Time to answer a GraphQL query or mutation, parsing included (subscriptions are not timed: "
    "they last as long as the client wants).",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_SUBSCRIPTIONS_ACTIVE = Gauge(
    "pbg_subscriptions_active",
    "GraphQL subscriptions being served now.",
    multiprocess_mode="livesum",
)
_ORDERS = Counter(
    "pbg_orders_total",
    "Order status changes committed, by order kind and the status reached (PENDING counts placed orders).",
    ["kind", "status"],
)
_WEBHOOK_DELIVERIES = Counter(
    "pbg_webhook_deliveries_total",
    "Stripe webhook deliveries answered, by outcome.",
    ["outcome"],
)

# Labelled children, looked up once per label set rather than on every call.
_operation_children: dict[tuple[str, str], Counter] = {}
_seconds_children = {kind: _OPERATION_SECONDS.labels(kind) for kind in ("query", "mutation")}
for _kind in OPERATION_TYPES:  # the usual series exist from the start, at 0
    _operation_children[_kind, "ok"] = _OPERATIONS.labels(_kind, "ok")


def operation_finished(operation_type: str, outcome: str, seconds: float) -> None:
    """Count one GraphQL operation and time it (queries and mutations).

    ``operation_type``: ``query``, ``mutation``, ``subscription`` or
    ``unknown``; ``outcome``: ``ok`` or an error code such as ``NOT_FOUND``.
    """
    child = _operation_children.get((operation_type, outcome))
    if child is None:
        child = _operation_children.setdefault((operation_type, outcome), _OPERATIONS.labels(operation_type, outcome))
    child.inc()
    timer = _seconds_children.get(operation_type)
    if timer is not None:
        timer.observe(seconds)


def subscription_started() -> None:
    _SUBSCRIPTIONS_ACTIVE.inc()


def subscription_ended() -> None:
    _SUBSCRIPTIONS_ACTIVE.dec()


def declare_order_labels(kinds: Iterable[str], statuses: Iterable[str]) -> None:
    """Create every (kind, status) series at 0, so rates work from the first change."""
    statuses = tuple(statuses)
    for kind in kinds:
        for status in statuses:
            _ORDERS.labels(kind, status)


def order_status_changed(kind: str, status: str) -> None:
    """An order's move to ``status`` was committed."""
    _ORDERS.labels(kind, status).inc()


WEBHOOK_OUTCOMES = ("processed", "duplicate", "ignored", "refused", "unavailable", "disabled", "error")
for _outcome in WEBHOOK_OUTCOMES:
    _WEBHOOK_DELIVERIES.labels(_outcome)


def webhook_delivered(outcome: str) -> None:
    """One Stripe webhook delivery answered: one of :data:`WEBHOOK_OUTCOMES`."""
    _WEBHOOK_DELIVERIES.labels(outcome).inc()


def registry_output(multiprocess_dir: str | None = None) -> bytes:
    """The text exposition of every metric: this process's, or with
    ``multiprocess_dir`` (``PROMETHEUS_MULTIPROC_DIR``, which prometheus-client
    itself reads when imported to keep values in files) all workers'."""
    if multiprocess_dir is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exiting(multiprocess_dir: str | None) -> None:
    """A worker stops: drop its live gauges from the shared files."""
    if multiprocess_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), multiprocess_dir)  # type: ignore[no-untyped-call]


def metrics_endpoint(
    token: str | None, *, multiprocess_dir: str | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``; with ``token``, only for ``Authorization: Bearer <token>``."""
    expected = token.encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            # compare_digest: the time taken says nothing about how much of the token matched.
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1"), expected):
                return JSONResponse(
                    {"error": "send the metrics token as Authorization: Bearer <METRICS_TOKEN>"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(registry_output(multiprocess_dir), media_type=CONTENT_TYPE_LATEST)

    return metrics

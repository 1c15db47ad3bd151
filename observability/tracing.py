"""Traces: Strawberry's OpenTelemetry extension, exporting over OTLP/HTTP.

Off unless configured (``OTEL=on``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` set):
then each operation is a span with child spans for parsing, validation and
each resolver. The OpenTelemetry packages are the optional ``otel`` extra and
are imported only here, only then, so a gateway without them starts as usual.

The OpenTelemetry SDK reads its own variables as well (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``…); the service
is called ``partner-billing-gateway`` unless ``OTEL_SERVICE_NAME`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strawberry.extensions import SchemaExtension

__all__ = ["SERVICE_NAME", "Tracing", "TracingUnavailable", "start_tracing"]

SERVICE_NAME = "partner-billing-gateway"


class TracingUnavailable(RuntimeError):
    """Tracing is configured but the ``otel`` extra is not installed."""


@dataclass
class Tracing:
    extension: type[SchemaExtension]
    shutdown: Callable[[], None]


def _public_arguments(arguments: dict[str, Any], _info: Any) -> dict[str, Any]:
    """Resolver arguments kept on spans: ids, page sizes and cursors, never an
    input object (card tokens, idempotency keys)."""
    return {name: value for name, value in arguments.items() if name != "input" and not isinstance(value, dict)}


def start_tracing(*, endpoint: str | None) -> Tracing:
    """A tracer provider exporting to ``endpoint`` (an OTLP/HTTP base URL such
    as ``http://collector:4318``; None: the SDK's default, ``http://localhost:4318``)
    and the Strawberry extension that uses it."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from strawberry.extensions.tracing import OpenTelemetryExtension
    except ImportError as exc:
        raise TracingUnavailable(
            "tracing is on (OTEL=on or OTEL_EXPORTER_OTLP_ENDPOINT) but the OpenTelemetry packages are missing: "
            "install the gateway with its otel extra (pip install 'partner-billing-gateway[otel]'), or set OTEL=off"
        ) from exc

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    # The signal-specific path is appended to a base endpoint, as the SDK
    # does for the OTEL_EXPORTER_OTLP_ENDPOINT variable.
    traces_url = f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))

    class GatewayTracing(OpenTelemetryExtension):
        def __init__(self, *, execution_context: Any = None) -> None:
            super().__init__(
                execution_context=execution_context, arg_filter=_public_arguments, tracer_provider=provider
            )

    return Tracing(extension=GatewayTracing, shutdown=provider.shutdown)

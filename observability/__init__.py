"""What operators see: request ids, log lines, Prometheus metrics, traces.

Below everything else (it imports nothing of the project), so any layer may
record a metric or read the current request id:

* :mod:`observability.requests`: the request id of the HTTP request or
  WebSocket operation being handled (a context variable);
* :mod:`observability.logs`: JSON (or text) log lines carrying that id, with
  secrets scrubbed;
* :mod:`observability.middleware`: the ASGI middleware that assigns the id,
  answers ``X-Request-ID`` and turns an unhandled exception into a JSON 500;
* :mod:`observability.metrics`: the ``pbg_*`` metrics and ``GET /metrics``;
* :mod:`observability.operations`: the Strawberry extension that measures each
  GraphQL operation (and gives each WebSocket operation its own id);
* :mod:`observability.tracing`: Strawberry's OpenTelemetry extension, loaded
  only when tracing is configured.
"""

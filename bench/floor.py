"""The floor: a bare Starlette endpoint answering ``POST /graphql`` with fixed bytes.

``bench/run.py`` serves it exactly as the Procfile serves the gateway (uvicorn,
one worker, the same flags) with ``FLOOR_BODY_FILE`` naming a file that holds
the gateway's own answer to the dashboard read. It reads the request body, as
any endpoint must, and sends those bytes back: what uvicorn and Starlette cost
for this request and answer, with nothing computed. The gateway's requests/s
as a share of the floor's is the issue's measure of how much work it adds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["app"]

# The gateway (observability.logs.configure_logging) sets uvicorn's loggers
# to LOG_LEVEL; at WARNING no access line is written. The same here, so both
# pay the same for logging.
for _name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
    logging.getLogger(_name).setLevel(os.environ.get("LOG_LEVEL", "WARNING"))

_ANSWER = Path(os.environ["FLOOR_BODY_FILE"]).read_bytes() if "FLOOR_BODY_FILE" in os.environ else b"{}"


async def graphql(request: Request) -> Response:
    await request.body()
    return Response(_ANSWER, media_type="application/json")


async def ready(_request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/readyz", ready)])

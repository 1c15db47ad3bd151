"""The GraphiQL page: our own HTML around the pinned files of :mod:`.assets`.

Three answers to a browser's ``GET /graphql``:
- the page, when ``GRAPHIQL`` is on and the files are installed: it loads
  nothing but the gateway's own files (its Content-Security-Policy says so to
  the browser too), talks to the same origin over HTTP and graphql-transport-ws,
  and never stores the headers (the token) in localStorage;
- a short HTML page saying the files are not installed and how to install
  them (503), instead of a "Loading…" that never ends;
- with ``GRAPHIQL=off``, a GraphQL-shaped JSON 404: no page at all.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from gateway.graphiql.assets import ASSETS, STATIC_DIR, missing_assets
from gateway.graphiql.examples import EXAMPLE_HEADERS, EXAMPLE_OPERATIONS, EXAMPLE_VARIABLES

__all__ = ["ASSETS_MOUNT", "GraphiQLPage"]

ASSETS_MOUNT = "/graphiql"

# Nothing from elsewhere: scripts and styles from the gateway, fonts and icons
# inline (GraphiQL's style sheet embeds its fonts), requests to the gateway
# only ('self' covers ws:/wss: to the same host since CSP 3). GraphiQL and
# CodeMirror set style attributes, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Partner Billing Gateway · GraphiQL</title>
<link rel="icon" href="data:,">
{styles}
<link rel="stylesheet" href="{base}/page.css">
<script type="application/json" id="graphiql-config">{config}</script>
{scripts}
<script defer src="{base}/page.js"></script>
</head>
<body>
<div id="graphiql"><p class="pbg-message" id="graphiql-loading">Loading GraphiQL…</p></div>
<noscript><p class="pbg-message">GraphiQL needs JavaScript. Without it, send GraphQL requests with
<code>POST /graphql</code>.</p></noscript>
</body>
</html>
"""

_NOT_INSTALLED = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>GraphiQL is not installed</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="{base}/page.css"></head>
<body><div class="pbg-message">
<h1>GraphiQL's files are not installed on this gateway</h1>
<p>The page loads React and GraphiQL from the gateway itself, and these are missing:</p>
<ul>{missing}</ul>
<p>Install them with <code>scripts/setup</code>, or
<code>python -m gateway.graphiql.install</code> in the gateway's environment (it needs npm), then reload.
The API itself works: send GraphQL requests with <code>POST /graphql</code>.</p>
</div></body>
</html>
"""

_TURNED_OFF = (
    "GraphiQL is turned off on this gateway (GRAPHIQL=off). "
    "Send GraphQL requests with POST /graphql (or GET with a query parameter for queries)."
)


class GraphiQLPage:
    """Renders the page and serves its files below :data:`ASSETS_MOUNT`."""

    def __init__(self, *, enabled: bool, static_dir: Path = STATIC_DIR) -> None:
        self.enabled = enabled
        self.static_dir = static_dir

    def routes(self) -> list[BaseRoute]:
        if not self.enabled:
            return []
        # check_dir=False: a gateway without the vendored files still starts
        # (its page then says what is missing).
        files = StaticFiles(directory=self.static_dir, check_dir=False)
        return [Mount(ASSETS_MOUNT, app=files, name="graphiql-assets")]

    def render(self, request: Request) -> Response:
        if not self.enabled:
            error = {"message": _TURNED_OFF, "extensions": {"code": "NOT_FOUND"}}
            return JSONResponse({"data": None, "errors": [error]}, status_code=404)
        base = request.scope.get("root_path", "") + ASSETS_MOUNT
        missing = missing_assets(self.static_dir)
        if missing:
            items = "".join(f"<li><code>{html.escape(asset.served_path)}</code></li>" for asset in missing)
            body = _NOT_INSTALLED.format(base=base, missing=items)
            return HTMLResponse(body, status_code=503, headers=PAGE_HEADERS)
        return HTMLResponse(self._page(base), headers=PAGE_HEADERS)

    def _page(self, base: str) -> str:
        def url(path: str) -> str:
            return html.escape(f"{base}/{path}")

        styles = "\n".join(
            f'<link rel="stylesheet" href="{url(a.served_path)}" integrity="{a.integrity}">'
            for a in ASSETS
            if a.kind == "style"
        )
        # defer: run in document order after parsing, so each script finds
        # the globals of those before it, and page.js runs last.
        scripts = "\n".join(
            f'<script defer src="{url(a.served_path)}" integrity="{a.integrity}"></script>'
            for a in ASSETS
            if a.kind == "script"
        )
        config = {"query": EXAMPLE_OPERATIONS, "variables": EXAMPLE_VARIABLES, "headers": EXAMPLE_HEADERS}
        # In a <script> element only "</" could end it early; \u003c keeps the JSON equal.
        config_json = json.dumps(config).replace("<", "\\u003c")
        return _PAGE.format(base=html.escape(base), styles=styles, scripts=scripts, config=config_json)

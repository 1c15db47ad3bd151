"""GraphiQL's page over real HTTP: served whole by the gateway, with its files'
integrity, its examples valid against the schema, a clear page when its files
are missing, and a JSON answer when ``GRAPHIQL=off``.

The page in a real browser: ``tests/browser/test_graphiql.py``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import graphql
import pytest

import gateway.app
from gateway.graphiql import GraphiQLPage
from gateway.graphiql.assets import ASSETS, STATIC_DIR
from gateway.graphiql.examples import EXAMPLE_HEADERS, EXAMPLE_OPERATIONS, EXAMPLE_VARIABLES
from tests.api.helpers import SHARED_LOOP, module_gateway, shared_gateway  # noqa: F401 - fixtures
from tests.conftest import sqlite_settings
from tests.support.browser import require_graphiql_assets
from tests.support.gateway import GatewayServer, serve_gateway

pytestmark = SHARED_LOOP

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class _Resources(HTMLParser):
    """Every URL the page makes the browser load, with its integrity."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") if tag == "script" else values.get("href") if tag == "link" else None
        if url is not None:
            self.loaded.append((url, values.get("integrity")))


def resources(page: str) -> list[tuple[str, str | None]]:
    parser = _Resources()
    parser.feed(page)
    return parser.loaded


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@pytest.fixture
def installed() -> None:
    require_graphiql_assets()


@pytest.fixture
def static_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the page's static files that the next gateway started serves."""
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    monkeypatch.setattr(gateway.app, "GraphiQLPage", functools.partial(GraphiQLPage, static_dir=copy))
    yield copy


@pytest.mark.usefixtures("installed")
async def test_the_page_loads_nothing_but_the_gateways_own_files(gateway: GatewayServer) -> None:
    response = await gateway.http.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "https://" not in page and "http://" not in page  # no CDN, no absolute URL at all
    # The browser enforces it as well.
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy

    loaded = resources(page)
    vendored = {f"/graphiql/{asset.served_path}": asset for asset in ASSETS}
    assert vendored.keys() <= {url for url, _ in loaded}
    for url, integrity in loaded:
        if url == "data:,":  # the empty favicon: no request for /favicon.ico
            continue
        assert url.startswith("/graphiql/"), url
        served = await gateway.http.get(url)
        assert served.status_code == 200, url
        if url in vendored:
            assert integrity == vendored[url].integrity == sha384(served.content), url
        expected = "text/javascript" if url.endswith(".js") else "text/css"
        assert served.headers["content-type"].startswith(expected), (url, served.headers["content-type"])


async def test_the_example_operations_are_valid_against_the_served_schema(gateway: GatewayServer) -> None:
    introspection = await gateway.client().data(graphql.get_introspection_query())
    schema = graphql.build_client_schema(introspection)  # type: ignore[arg-type]
    document = graphql.parse(EXAMPLE_OPERATIONS)
    assert graphql.validate(schema, document) == []
    names = {
        op.name.value for op in document.definitions if isinstance(op, graphql.OperationDefinitionNode) and op.name
    }
    assert {"Viewer", "ProductsAndCatalog", "AddCard", "BuyLicenses", "PaymentConfirmation"} <= names
    # Every variable an operation declares has a value (a placeholder) ready.
    variables = json.loads(EXAMPLE_VARIABLES)
    for operation in document.definitions:
        assert isinstance(operation, graphql.OperationDefinitionNode)
        for definition in operation.variable_definitions or ():
            assert definition.variable.name.value in variables
    assert set(json.loads(EXAMPLE_HEADERS)) == {"Authorization"}


async def test_without_its_files_the_page_says_so(tmp_path: Path, static_dir: Path) -> None:
    shutil.rmtree(static_dir / "vendor", ignore_errors=True)
    async with serve_gateway(sqlite_settings(tmp_path)) as server:
        response = await server.http.get("/graphql", headers=BROWSER)
        query = await server.client().post("{ __typename }")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "not installed" in response.text and "scripts/setup" in response.text
    assert "graphiql@3.8.3/graphiql.min.js" in response.text  # what exactly is missing
    assert "<script" not in response.text  # nothing left to hang on "Loading…"
    assert query.json() == {"data": {"__typename": "Query"}}  # the API itself works


async def test_graphiql_off_answers_browsers_with_a_clear_json_error(tmp_path: Path) -> None:
    async with serve_gateway(sqlite_settings(tmp_path, graphiql=False)) as server:
        page = await server.http.get("/graphql", headers=BROWSER)
        asset = await server.http.get("/graphiql/page.js")
        query = await server.http.get("/graphql", params={"query": "{ __typename }"})
        mutation = await server.http.get("/graphql", params={"query": "mutation { __typename }"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("application/json")
    body = page.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "GRAPHIQL=off" in body["errors"][0]["message"]
    assert asset.status_code == 404
    assert query.json() == {"data": {"__typename": "Query"}}  # queries over GET still work
    assert mutation.status_code in (400, 405)  # mutations over GET stay refused
    assert mutation.json()["data"] is None

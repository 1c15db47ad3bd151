"""Request ids and log lines of a real gateway process: ``X-Request-ID`` on
every answer, the ``INTERNAL`` error's ``requestId`` found in the log line
with its traceback, one id per WebSocket operation, no secret in any line."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.observability.support import observed_gateway

CATALOG = "query Catalog($c: ID!) { catalog(actingCustomer: $c) { id } }"
NEW_ID = re.compile(r"[0-9a-f]{32}")


@contextlib.contextmanager
def table_renamed(database: Path, table: str) -> Iterator[None]:
    """Pull a table from under the running gateway, so reading it fails as a
    real fault would (an unexpected driver error), then put it back."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")
        conn.commit()
    try:
        yield
    finally:
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.execute(f"ALTER TABLE {table}_gone RENAME TO {table}")
            conn.commit()


def lines_where(lines: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]]:
    return [line for line in lines if all(line.get(k) == v for k, v in fields.items())]


async def test_request_ids_internal_errors_and_json_log_lines(tmp_path: Path) -> None:
    with observed_gateway(tmp_path, {"LOG_LEVEL": "INFO"}, access_log=True) as gateway:
        tenant = await gateway.tenant()
        owner_token = tenant.tokens["PARTNER_OWNER"]
        customer = tenant.customers[0].id
        async with gateway.process.client(owner_token) as client:
            http = client.http
            # A sane id of the client's is echoed; anything else is replaced.
            chosen = await http.get("/healthz", headers={"X-Request-ID": "client-chosen.id:42"})
            assert chosen.headers["x-request-id"] == "client-chosen.id:42"
            for unsafe in [b"x" * 129, b"has space", b'quote"d', b"", "ü".encode()]:
                answer = await http.get("/healthz", headers={b"X-Request-ID": unsafe})
                assert NEW_ID.fullmatch(answer.headers["x-request-id"]), (unsafe, answer.headers)
            assert (await http.get("/healthz", headers={"X-Request-ID": "x" * 128})).headers[
                "x-request-id"
            ] == "x" * 128
            # Every answer carries one, refusals by inner layers included.
            missing = await http.get("/no-such-page")
            too_big = await http.post(
                "/graphql", content=b"x" * (300 * 1024), headers={"content-type": "application/json"}
            )
            assert (missing.status_code, too_big.status_code) == (404, 413)
            assert NEW_ID.fullmatch(missing.headers["x-request-id"]) and NEW_ID.fullmatch(
                too_big.headers["x-request-id"]
            )
            # A secret in a URL is logged redacted.
            await http.get(f"/healthz?token={owner_token}")

            with table_renamed(tmp_path / "gateway.sqlite3", "plans"):
                # When a query fails unexpectedly, over HTTP with and without an id of the client's
                traced = await client.post(CATALOG, {"c": customer}, headers={"X-Request-ID": "find-me-123"})
                untraced = await client.post(CATALOG, {"c": customer})
                # and over WebSocket.
                async with gateway.process.websocket(owner_token) as ws:
                    assert ws.conn.response is not None
                    connection_id = ws.conn.response.headers["x-request-id"]
                    op = await ws.subscribe(CATALOG, {"c": customer})
                    failed = await ws.receive()
                    assert (await ws.receive())["type"] == "complete"

            # Then the client gets INTERNAL with the request id, and nothing more.
            assert traced.headers["x-request-id"] == "find-me-123"
            assert traced.json()["errors"] == [
                {
                    "message": "Internal error.",
                    "locations": [{"line": 1, "column": 26}],
                    "path": ["catalog"],
                    "extensions": {"code": "INTERNAL", "requestId": "find-me-123"},
                }
            ]
            untraced_id = untraced.json()["errors"][0]["extensions"]["requestId"]
            assert untraced_id == untraced.headers["x-request-id"] and NEW_ID.fullmatch(untraced_id)
            assert failed["id"] == op and failed["type"] == "next", failed
            ws_error = failed["payload"]["errors"][0]
            assert ws_error["extensions"]["code"] == "INTERNAL"
            operation_id = ws_error["extensions"]["requestId"]
            assert NEW_ID.fullmatch(operation_id) and operation_id != connection_id
            assert NEW_ID.fullmatch(connection_id)

    lines = gateway.log_lines()  # every line is JSON, or this fails
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    # The log line of each failed request has its id and the traceback.
    for request_id in ("find-me-123", untraced_id, operation_id):
        [error] = lines_where(lines, level="ERROR", logger="gateway.errors", request_id=request_id)
        assert "no such table: plans" in error["exc_info"], error
    # Each WebSocket operation has a line of its own, naming its connection.
    [operation] = lines_where(lines, logger="gateway.operations", request_id=operation_id)
    assert operation["connection_id"] == connection_id
    assert (operation["operation_type"], operation["operation_name"], operation["outcome"]) == (
        "query",
        "Catalog",
        "INTERNAL",
    )
    assert operation["duration_ms"] > 0
    # Access lines: one per request, with the request's id and fields.
    [access] = lines_where(lines, logger="uvicorn.access", request_id="client-chosen.id:42")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/healthz", 200)
    [with_secret] = [line for line in lines_where(lines, logger="uvicorn.access") if "token=" in line["message"]]
    assert "token=pbg_[REDACTED]" in with_secret["message"]
    # No secret anywhere.
    text = gateway.process.log_text()
    assert owner_token not in text and owner_token[4:] not in text
    assert "Traceback" in text  # the tracebacks are there, inside JSON strings


async def test_text_log_lines_for_a_terminal(tmp_path: Path) -> None:
    with observed_gateway(tmp_path, {"LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}, access_log=True) as gateway:
        async with gateway.process.http() as http:
            await http.get("/healthz", headers={"X-Request-ID": "text-id-1"})
    lines = gateway.process.log_text().splitlines()
    line_format = re.compile(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \[[^\]]+\]: .*"
    )
    assert lines and all(line_format.fullmatch(line) for line in lines), lines
    assert any("uvicorn.access [text-id-1]: " in line and "GET /healthz" in line for line in lines), lines
    assert any(" uvicorn.error [-]: Application startup complete." in line for line in lines), lines

"""``python -m bulk_orders ORDERS.csv``: buy what a CSV file lists, once.

Exit codes: 0 every row succeeded; 1 at least one row did not (the summary
says why; running the same file again is safe); 2 nothing was attempted (bad
arguments, a bad file, no or a refused token, gateway unreachable);
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bulk_orders.client import GatewayClient, GatewayUnreachable, RequestRefused
from bulk_orders.confirmation import ConfirmationWatcher
from bulk_orders.keys import idempotency_keys
from bulk_orders.retry import RetryPolicy
from bulk_orders.rows import COLUMNS, CsvError, OrderRow, read_rows
from bulk_orders.runner import RowResult, Runner
from bulk_orders.summary import as_json, render_table

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_NOT_STARTED", "EXIT_OK", "main"]

EXIT_OK, EXIT_FAILED, EXIT_NOT_STARTED, EXIT_INTERRUPTED = 0, 1, 2, 130
TOKEN_ENV = "PARTNER_BILLING_TOKEN"
URL_ENV = "PARTNER_BILLING_URL"
DEFAULT_URL = "http://127.0.0.1:8000/graphql"
BUYING_ROLES = frozenset({"PARTNER_OWNER", "PARTNER_FINANCE_ADMIN"})
VIEWER = "query Viewer { viewer { email role partner { name } } }"

log = logging.getLogger("bulk_orders")


class NotStarted(Exception):
    """Why the run stopped before buying anything (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    # httpx logs every request at INFO; the script's own lines say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        url, ws_url = _urls(args.url)
        rows = read_rows(args.csv)
        token = _token()
    except CsvError as exc:
        print(f"{exc}\nnothing was bought: correct the file and run it again", file=sys.stderr)
        return EXIT_NOT_STARTED
    except NotStarted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_STARTED
    run_label = args.run_label if args.run_label is not None else args.csv.name
    if not run_label.strip():
        print("error: --run-label must not be empty", file=sys.stderr)
        return EXIT_NOT_STARTED
    policy = RetryPolicy(attempts=args.attempts)
    results: list[RowResult] = []
    try:
        asyncio.run(_run(url, ws_url, token, policy, rows, run_label, args.settle_timeout, results))
    except NotStarted as exc:
        print(f"error: {exc}; nothing was bought", file=sys.stderr)
        return EXIT_NOT_STARTED
    except KeyboardInterrupt:
        if results:
            print(json.dumps(as_json(results), indent=2) if args.json else render_table(results))
        print(
            f"interrupted after {len(results)} of {len(rows)} rows: run the same file again to finish; "
            "nothing is bought twice",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(json.dumps(as_json(results), indent=2) if args.json else render_table(results))
    return EXIT_OK if all(result.succeeded for result in results) else EXIT_FAILED


async def _run(
    url: str,
    ws_url: str,
    token: str,
    policy: RetryPolicy,
    rows: list[OrderRow],
    run_label: str,
    settle_timeout_s: float,
    results: list[RowResult],
) -> None:
    """Append each row's outcome to ``results`` as soon as it is known."""
    gateway = GatewayClient(url, token, policy)
    watcher = ConfirmationWatcher(ws_url, token, policy)
    try:
        await _check_caller(gateway)
        log.info("%d order(s), run label %r", len(rows), run_label)
        runner = Runner(gateway, watcher, settle_timeout_s=settle_timeout_s)
        for row, key in zip(rows, idempotency_keys(run_label, rows), strict=True):
            results.append(await runner.run(row, key))
    finally:
        await watcher.aclose()
        await gateway.aclose()


async def _check_caller(gateway: GatewayClient) -> None:
    """Refuse to start with a token that could not buy anything."""
    try:
        viewer = (await gateway.execute(VIEWER, {}, what="sign-in"))["viewer"]
    except RequestRefused as refused:
        raise NotStarted(f"the gateway refused the token in {TOKEN_ENV} ({refused})") from None
    except GatewayUnreachable as exc:
        raise NotStarted(f"cannot reach the gateway at {gateway.url}: {exc}") from None
    if viewer["role"] not in BUYING_ROLES:
        raise NotStarted(
            f"{viewer['email']} is {viewer['role']}, which may not buy; use a PARTNER_OWNER or "
            "PARTNER_FINANCE_ADMIN token"
        )
    log.info("signed in as %s (%s) of %s", viewer["email"], viewer["role"], viewer["partner"]["name"])


def _token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    token = token.removeprefix("Bearer ").strip()
    if not token:
        raise NotStarted(f"set {TOKEN_ENV} to an API token of a PARTNER_OWNER or PARTNER_FINANCE_ADMIN")
    return token


def _urls(url: str) -> tuple[str, str]:
    """The HTTP endpoint and the WebSocket one beside it (same host and path)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise NotStarted(f"the gateway URL must look like {DEFAULT_URL}, got {url!r}")
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return url, urlunsplit((ws_scheme, parts.netloc, parts.path, parts.query, ""))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bulk_orders",
        description=(
            "Buy licenses and storage plans listed in a CSV file, each exactly once, and wait for every "
            f"payment to settle. The API token is read from ${TOKEN_ENV}."
        ),
        epilog="Exit codes: 0 all rows succeeded, 1 some row failed, 2 nothing was attempted, 130 interrupted.",
    )
    parser.add_argument("csv", type=Path, help=f"the orders: a header line naming the columns ({', '.join(COLUMNS)})")
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or DEFAULT_URL,
        help=f"the gateway's GraphQL endpoint (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--run-label",
        help="names this batch in every idempotency key (default: the file's name); the same label and rows "
        "are never bought twice, so give a new batch a new label or file name",
    )
    parser.add_argument(
        "--settle-timeout",
        type=_positive,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for each payment to settle (default: 120)",
    )
    parser.add_argument(
        "--attempts",
        type=_count,
        default=RetryPolicy().attempts,
        help=f"sends of each request before giving up on it (default: {RetryPolicy().attempts})",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr, only warnings")
    return parser


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value

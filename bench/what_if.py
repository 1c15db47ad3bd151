"""A/B runs of the fixes suggested in docs/performance.md, without editing app code.

Each case starts the gateway twice through ``bench/_patched_app.py``: once
unpatched (``BENCH_PATCHES`` empty) and once with one patch, and measures the
same thing on both:

* ``validation``: server CPU per request (concurrency 1) for four queries,
  with ``validation-cache``.
* ``fanout``: fan-out of one order to N ``orderStatusChanged`` subscribers,
  with ``fanout-order-once``.
* ``writes``: 50 buyLicenses one after another and 50 at once, with ``write-lock``.

    python bench/what_if.py                    # all three cases (about 1.5 minutes)
    python bench/what_if.py --case fanout      # one case
    python bench/what_if.py --quick            # smaller numbers, for a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import http_latency
import sqlite_contention
import ws_memory
from _common import (
    BUY,
    Tenant,
    banner,
    cpu_seconds,
    footer,
    gateway,
    gql,
    http_client,
    median,
    prepare_tenant,
    seed_demo,
    sqlite_url,
    table,
    workdir,
)

BENCH = Path(__file__).resolve().parent
CASES = ("validation", "fanout", "writes")


def _env(patches: str) -> dict[str, str]:
    return {"PYTHONPATH": str(BENCH), "BENCH_PATCHES": patches}


def _fresh(tmp: Path, case: str, patch: str) -> tuple[str, dict[str, Any]]:
    """A database of its own for each run, so both sides of a comparison start equal."""
    db_url = sqlite_url(tmp / f"{case}-{patch or 'none'}")
    return db_url, seed_demo(db_url)


async def validation(tmp: Path, patch: str, requests: int) -> list[object]:
    db_url, seeded = _fresh(tmp, "validation", patch)
    row: list[object] = [patch or "none"]
    server = gateway(db_url, tmp, name=f"validation-{patch}", app="_patched_app:app", extra_env=_env(patch))
    async with server as gw, http_client() as client:
        tenant = await prepare_tenant(client, gw.url, seeded)
        for _ in range(55):  # a full orders page
            await gql(client, gw.url, tenant.token, BUY, _buy_vars(tenant))
        await asyncio.sleep(0.3)
        c, p = tenant.customer_id, tenant.product_id
        queries: list[tuple[str, dict[str, object] | None]] = [
            (http_latency.VIEWER, None),
            (http_latency.PRODUCTS, {"c": c}),
            (http_latency.SUMMARY, {"c": c, "p": p}),
            (http_latency.ORDERS, {"c": c}),
        ]
        for query, variables in queries:
            for _ in range(10):
                await gql(client, gw.url, tenant.token, query, variables)
            cpu0, started = cpu_seconds(gw.pid), time.perf_counter()
            for _ in range(requests):
                await gql(client, gw.url, tenant.token, query, variables)
            wall = (time.perf_counter() - started) * 1000 / requests
            row.append(f"{(cpu_seconds(gw.pid) - cpu0) * 1000 / requests:.2f} / {wall:.1f}")
    return row


def _buy_vars(tenant: Tenant) -> dict[str, object]:
    return {"c": tenant.customer_id, "p": tenant.product_id, "q": 1, "k": None}


async def fanout(tmp: Path, patch: str, n: int, rounds: int) -> list[object]:
    db_url, seeded = _fresh(tmp, "fanout", patch)
    async with gateway(db_url, tmp, name=f"fanout-{patch}", app="_patched_app:app", extra_env=_env(patch)) as gw:
        async with http_client() as client:
            tenant = await prepare_tenant(client, gw.url, seeded)
        state = ws_memory.Fanout()
        subscribers = await ws_memory.open_many(gw, tenant.token, state, n, compression=None)
        try:
            await asyncio.sleep(ws_memory.SETTLE_S)
            await ws_memory.fanout_round(gw, tenant, state, n)  # warm-up: every subscription is live
            measured = [await ws_memory.fanout_round(gw, tenant, state, n) for _ in range(rounds)]
        finally:
            await ws_memory.close_all(subscribers)
    return [
        patch or "none",
        n,
        f"{median([r.mutation_ms for r in measured]):.0f}",
        f"{median([r.p50_ms for r in measured]):.0f}",
        f"{median([r.p100_ms for r in measured]):.0f}",
        f"{median([r.server_cpu_ms for r in measured]) / n:.2f}",
        "yes" if all(r.received == n for r in measured) else "no",
    ]


async def writes(tmp: Path, patch: str, orders: int) -> list[list[object]]:
    db_url, seeded = _fresh(tmp, "writes", patch)
    async with gateway(db_url, tmp, name=f"writes-{patch}", app="_patched_app:app", extra_env=_env(patch)) as gw:
        async with http_client() as client:
            tenants = [await prepare_tenant(client, gw.url, seeded)]
        await sqlite_contention.run_case(gw, f"warm-{patch}", tenants, 10, 10)
        cases = [await sqlite_contention.run_case(gw, f"seq-{patch}", tenants, orders, 1)]
        cases += [await sqlite_contention.run_case(gw, f"all-{patch}-{r}", tenants, orders, orders) for r in range(2)]
        problems = gw.log_problems()
    rows: list[list[object]] = []
    for case in cases:
        row = case.row()
        row[0] = f"{patch or 'none'}: " + ("one after another" if case.concurrency == 1 else "all at once")
        rows.append([*row, len(problems)])
    return rows


async def main(cases: list[str], quick: bool) -> int:
    banner("What-if A/B runs (bench/what_if.py" + (" --quick)" if quick else ")"))
    requests, n, rounds, orders = (30, 50, 1, 10) if quick else (300, 500, 3, 50)
    with workdir("whatif") as name:
        tmp = Path(name)
        if "validation" in cases:
            rows = [await validation(tmp, p, requests) for p in ("", "validation-cache")]
            print("server CPU ms / wall ms per request, concurrency 1:")
            print(
                table(
                    ["patch", "viewer { id }", "products", "licensePurchaseSummary", "orders(first: 50) + summary"],
                    rows,
                )
            )
            print()
        if "fanout" in cases:
            rows = [await fanout(tmp, p, n, rounds) for p in ("", "fanout-order-once")]
            headers = ["patch", "subscribers", "buy ms", "p50 ms", "p100 ms", "server CPU ms/sub/order", "all got it"]
            print(table(headers, rows))
            print()
        if "writes" in cases:
            rows = [row for p in ("", "write-lock") for row in await writes(tmp, p, orders)]
            print(table([*sqlite_contention.HEADERS, "server log problems"], rows))
            print()
    footer()
    return 0


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke test")
    parser.add_argument("--case", choices=CASES, action="append", help="run only this case (repeatable)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse()
    sys.exit(asyncio.run(main(args.case or list(CASES), args.quick)))

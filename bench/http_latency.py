"""HTTP latency and throughput of the real gateway (uvicorn subprocess, SQLite).

For each operation, at concurrency 1 and 16: latency percentiles (p50/p95/p99),
throughput, the server's CPU time per request, and errors. The server's RSS
(VmRSS) is reported at start and at end, with its peak (VmHWM).

    python bench/http_latency.py            # full run (about 1.5 minutes)
    python bench/http_latency.py --quick    # smoke run (about 15 seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _common import (
    BUY,
    GraphQLFailure,
    Tenant,
    banner,
    cpu_seconds,
    footer,
    gateway,
    gql,
    http_client,
    mib,
    percentile,
    prepare_tenant,
    proc_status,
    seed_demo,
    sqlite_url,
    table,
    user_errors,
    workdir,
)

VIEWER = "{ viewer { id } }"

PRODUCTS = """
query($c: ID!) { products(actingCustomer: $c) { id plan { name price(interval: MONTHLY) { amount } } } }"""

ORDERS = """
query($c: ID!) {
  orders(actingCustomer: $c, first: 50) {
    edges { node { id status total { amount }
      summary { lines { description quantity unitPrice { amount } amount { amount } } total { amount } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

SUMMARY = """
query($c: ID!, $p: ID!) {
  licensePurchaseSummary(actingCustomer: $c, input: {productId: $p, quantity: 5}) {
    lines { description quantity unitPrice { amount } amount { amount } } total { amount currency }
  }
}"""

IN_FLIGHT = """
query($c: ID!, $s: OrderStatus) { orders(actingCustomer: $c, first: 1, status: $s) { edges { node { id } } } }"""

CONCURRENCIES = (1, 16)


@dataclass
class Run:
    name: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    wall_s: float = 0.0
    server_cpu_s: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0

    def row(self) -> list[object]:
        n = len(self.latencies_ms)
        done = n + self.errors
        return [
            self.name,
            self.concurrency,
            done,
            f"{percentile(self.latencies_ms, 50):.1f}",
            f"{percentile(self.latencies_ms, 95):.1f}",
            f"{percentile(self.latencies_ms, 99):.1f}",
            f"{self.throughput:.0f}",
            f"{1000 * self.server_cpu_s / done:.2f}" if done else "-",
            self.errors,
        ]


HEADERS = ["operation", "conc.", "requests", "p50 ms", "p95 ms", "p99 ms", "req/s", "server CPU ms/req", "errors"]

Call = Callable[[httpx.AsyncClient, int], Awaitable[None]]


async def measure(
    name: str, call: Call, *, pid: int, concurrency: int, max_requests: int, max_seconds: float, warmup: int
) -> Run:
    """Up to ``max_requests`` calls or ``max_seconds``, whichever comes first,
    from ``concurrency`` workers, after ``warmup`` unmeasured calls."""
    run = Run(name, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with http_client(limits=limits) as client:
        counter = itertools.count()
        for i in range(warmup):
            await call(client, -1 - i)
        deadline = time.monotonic() + max_seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                i = next(counter)
                if i >= max_requests:
                    return
                started = time.perf_counter()
                try:
                    await call(client, i)
                except (GraphQLFailure, httpx.HTTPError) as exc:
                    run.errors += 1
                    run.first_error = run.first_error or f"{type(exc).__name__}: {exc}"
                    continue
                run.latencies_ms.append((time.perf_counter() - started) * 1000)

        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.wall_s = time.perf_counter() - started
        run.server_cpu_s = cpu_seconds(pid) - cpu_before
    return run


async def settle(client: httpx.AsyncClient, url: str, tenant: Tenant, *, timeout_s: float = 30) -> float:
    """Wait (bounded) until no order of the tenant is PENDING or PROCESSING; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        busy = False
        for status in ("PENDING", "PROCESSING"):
            data = await gql(client, url, tenant.token, IN_FLIGHT, {"c": tenant.customer_id, "s": status})
            busy = busy or bool(data["orders"]["edges"])
        if not busy:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def main(quick: bool) -> int:
    banner("HTTP latency (bench/http_latency.py" + (" --quick)" if quick else ")"))
    max_requests, max_seconds, warmup, seed_orders = (40, 1.0, 3, 20) if quick else (3000, 5.0, 20, 100)
    with workdir("http") as tmp:
        db_url = sqlite_url(tmp)
        seeded = seed_demo(db_url)
        async with gateway(db_url, Path(tmp)) as server:
            url, pid = server.url, server.pid
            start_mem = proc_status(pid)
            async with http_client() as client:
                tenant = await prepare_tenant(client, url, seeded)
                t, c, p = tenant.token, tenant.customer_id, tenant.product_id

                async def one_buy(client: httpx.AsyncClient, i: int) -> None:
                    data = await gql(client, url, t, BUY, {"c": c, "p": p, "q": 1, "k": None})
                    if user_errors(data):
                        raise GraphQLFailure(str(user_errors(data)))

                # Orders for the orders(first: 50) page, created 8 at a time.
                seeding = time.perf_counter()
                for start in range(0, seed_orders, 8):
                    await asyncio.gather(*(one_buy(client, i) for i in range(start, min(seed_orders, start + 8))))
                await settle(client, url, tenant)
                print(f"created {seed_orders} orders in {time.perf_counter() - seeding:.1f}s (incl. settlement)\n")

            async def healthz(client: httpx.AsyncClient, _i: int) -> None:
                response = await client.get(url + "/healthz")
                if response.status_code != 200:
                    raise GraphQLFailure(f"HTTP {response.status_code}")

            async def viewer(client: httpx.AsyncClient, _i: int) -> None:
                await gql(client, url, t, VIEWER)

            async def products(client: httpx.AsyncClient, _i: int) -> None:
                await gql(client, url, t, PRODUCTS, {"c": c})

            async def orders(client: httpx.AsyncClient, _i: int) -> None:
                data = await gql(client, url, t, ORDERS, {"c": c})
                if len(data["orders"]["edges"]) != min(50, seed_orders):
                    raise GraphQLFailure(f"expected a full page, got {len(data['orders']['edges'])}")

            async def summary(client: httpx.AsyncClient, _i: int) -> None:
                await gql(client, url, t, SUMMARY, {"c": c, "p": p})

            scenarios: list[tuple[str, Call]] = [
                ("GET /healthz (baseline)", healthz),
                ("viewer { id }", viewer),
                ("products", products),
                ("orders(first: 50) + summary", orders),
                ("licensePurchaseSummary", summary),
                ("buyLicenses", one_buy),
            ]
            runs: list[Run] = []
            async with http_client() as client:
                for (name, call), concurrency in itertools.product(scenarios, CONCURRENCIES):
                    # Writes are slower: fewer of them, so the run stays short.
                    cap = max_requests if call is not one_buy else max_requests // 6
                    run = await measure(
                        name,
                        call,
                        pid=pid,
                        concurrency=concurrency,
                        max_requests=cap,
                        max_seconds=max_seconds,
                        warmup=warmup,
                    )
                    runs.append(run)
                    if call is one_buy:
                        waited = await settle(client, url, tenant)
                        print(f"buyLicenses c={concurrency}: settled {waited:.2f}s after the last answer")
            end_mem = proc_status(pid)
            problems = server.log_problems()

    print()
    print(table(HEADERS, [r.row() for r in runs]))
    print()
    print(
        table(
            ["server memory", "MiB"],
            [
                ["VmRSS at start (after readyz)", mib(start_mem["VmRSS"])],
                ["VmRSS at end", mib(end_mem["VmRSS"])],
                ["VmHWM (peak) at end", mib(end_mem["VmHWM"])],
            ],
        )
    )
    for run in runs:
        if run.errors:
            print(f"\n{run.name} c={run.concurrency}: first error: {run.first_error}")
    if problems:
        print(f"\nserver log: {len(problems)} problem lines, first: {problems[0]}")
    failed = any(r.errors for r in runs) or bool(problems)
    footer()
    return 1 if failed else 0


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few requests per case, for a smoke test")
    return parser.parse_args(argv)


def _cli() -> Any:
    return asyncio.run(main(_parse().quick))


if __name__ == "__main__":
    sys.exit(_cli())

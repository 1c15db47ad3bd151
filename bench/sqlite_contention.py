"""Concurrent buyLicenses against the SQLite default: throughput and errors.

Every write transaction on SQLite starts with ``BEGIN IMMEDIATE`` (see
``models/database.py``), so writers run one at a time. This measures what that
costs: the same number of purchases one after another, all at once on one
product, and all at once spread over several customers (the lock is the whole
database's, not a product's). After each case it waits (bounded) until every
order is settled and checks that licenses grew by exactly the number bought.
There must be no errors.

    python bench/sqlite_contention.py            # 50 purchases per case, 3 rounds of the concurrent case
    python bench/sqlite_contention.py --quick    # 10 purchases per case, 1 round
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from _common import (
    BUY,
    PRODUCTS,
    Gateway,
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

IN_FLIGHT = """
query($c: ID!, $s: OrderStatus) { orders(actingCustomer: $c, first: 1, status: $s) { edges { node { id } } } }"""

SETTLE_TIMEOUT_S = 30
EXTRA_PARTNERS = 4  # with the first one: 10 customers for the spread case


@dataclass
class Case:
    name: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    settle_s: float = 0.0
    licenses_ok: bool = False

    def row(self) -> list[object]:
        n = len(self.latencies_ms)
        return [
            self.name,
            self.concurrency,
            n + len(self.errors),
            f"{self.wall_s:.2f}",
            f"{n / self.wall_s:.1f}" if self.wall_s else "-",
            f"{percentile(self.latencies_ms, 50):.0f}",
            f"{percentile(self.latencies_ms, 95):.0f}",
            f"{max(self.latencies_ms, default=float('nan')):.0f}",
            f"{1000 * self.server_cpu_s / max(1, n):.1f}",
            f"{self.settle_s:.2f}",
            ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            len(self.errors),
            "yes" if self.licenses_ok else "NO",
        ]


HEADERS = [
    "case",
    "conc.",
    "orders",
    "wall s",
    "orders/s",
    "p50 ms",
    "p95 ms",
    "max ms",
    "server CPU ms/order",
    "settled after s",
    "statuses answered",
    "errors",
    "licenses exact",
]


async def licenses(client: httpx.AsyncClient, url: str, tenant: Tenant) -> int:
    products = (await gql(client, url, tenant.token, PRODUCTS, {"c": tenant.customer_id}))["products"]
    total: int = next(p["totalLicenses"] for p in products if p["id"] == tenant.product_id)
    return total


async def settle(client: httpx.AsyncClient, url: str, tenants: list[Tenant]) -> float:
    """Wait (bounded) until no order of these tenants is PENDING or PROCESSING."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        busy = False
        for tenant in tenants:
            for status in ("PENDING", "PROCESSING"):
                data = await gql(client, url, tenant.token, IN_FLIGHT, {"c": tenant.customer_id, "s": status})
                busy = busy or bool(data["orders"]["edges"])
        if not busy:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def run_case(server: Gateway, name: str, tenants: list[Tenant], orders: int, concurrency: int) -> Case:
    """``orders`` purchases of one license, round-robin over ``tenants``, ``concurrency`` at a time."""
    case = Case(name, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with http_client(limits=limits, timeout=60) as client:
        before = {t.product_id: await licenses(client, server.url, t) for t in tenants}
        bought: Counter[str] = Counter()
        gate = asyncio.Semaphore(concurrency)

        async def buy(i: int) -> None:
            tenant = tenants[i % len(tenants)]
            async with gate:
                started = time.perf_counter()
                try:
                    data = await gql(
                        client,
                        server.url,
                        tenant.token,
                        BUY,
                        {"c": tenant.customer_id, "p": tenant.product_id, "q": 1, "k": f"{name}-{i}"},
                    )
                except (GraphQLFailure, httpx.HTTPError) as exc:
                    case.errors.append(f"{type(exc).__name__}: {exc}")
                    return
                elapsed = (time.perf_counter() - started) * 1000
            if user_errors(data):
                case.errors.append(str(user_errors(data)))
                return
            case.latencies_ms.append(elapsed)
            case.statuses[data["buyLicenses"]["order"]["status"]] += 1
            bought[tenant.product_id] += 1

        cpu0, started = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.gather(*(buy(i) for i in range(orders)))
        case.wall_s = time.perf_counter() - started
        case.server_cpu_s = cpu_seconds(server.pid) - cpu0
        case.settle_s = await settle(client, server.url, tenants)
        after = {t.product_id: await licenses(client, server.url, t) for t in tenants}
    case.licenses_ok = all(after[p] - before[p] == bought[p] for p in before) and sum(bought.values()) == orders
    return case


async def main(quick: bool) -> int:
    banner("SQLite write contention (bench/sqlite_contention.py" + (" --quick)" if quick else ")"))
    orders, rounds = (10, 1) if quick else (50, 3)
    with workdir("sqlite") as tmp:
        db_url = sqlite_url(tmp)
        seeded = [seed_demo(db_url) for _ in range(1 + EXTRA_PARTNERS)]
        async with gateway(db_url, Path(tmp), name="contention") as server:
            async with http_client() as client:
                tenants = [await prepare_tenant(client, server.url, s, customer=c) for s in seeded for c in range(2)]
            start_mem = proc_status(server.pid)
            one = tenants[:1]
            cases = [await run_case(server, "warm-up (not counted)", one, 10, 10)]
            cases.append(await run_case(server, "one after another, 1 product", one, orders, 1))
            for r in range(rounds):
                cases.append(await run_case(server, f"all at once, 1 product (round {r + 1})", one, orders, orders))
            cases.append(await run_case(server, f"all at once, {len(tenants)} customers", tenants, orders, orders))
            end_mem = proc_status(server.pid)
            problems = server.log_problems()

    print(table(HEADERS, [c.row() for c in cases[1:]]))
    print()
    print(f"server VmRSS {mib(start_mem['VmRSS'])} MiB before, {mib(end_mem['VmRSS'])} MiB after, ", end="")
    print(f"peak {mib(end_mem['VmHWM'])} MiB")
    for case in cases:
        if case.errors:
            print(f"\n{case.name}: {len(case.errors)} errors, first: {case.errors[0][:300]}")
    print(
        f"server log: {len(problems)} ERROR/Traceback/'locked' lines" + (f", first: {problems[0]}" if problems else "")
    )
    failed = any(c.errors or not c.licenses_ok for c in cases) or bool(problems)
    footer()
    return 1 if failed else 0


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 purchases per case, for a smoke test")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_parse().quick)))

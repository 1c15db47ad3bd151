"""Figure 2: purchases from 16 concurrent clients, then proof that every one settled.

wrk keeps ``buy_connections`` connections sending ``buyLicenses`` (1 license,
no idempotency key, the customer's primary ``pm_card_visa``; the sandbox
confirms at once) and checks each answer in Lua: HTTP 200, no ``errors``, an
empty ``userErrors``. After the run the benchmark waits for settlement and
reads the SQLite file directly: every order placed is SUCCEEDED and the
product's licenses grew by exactly the number of orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (
    Checks,
    Config,
    Target,
    Tenant,
    fmt,
    graphql_body,
    prepare_tenant,
    read_only,
    seed_demo,
    serve,
    server_env,
    table,
)
from wrkload import WrkResult, run_wrk, write_script

__all__ = ["BUY", "purchases_figure"]

BUY = """mutation Buy($c: ID!, $p: ID!) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: 1}) {
    order { id status } userErrors { code message }
  }
}"""

TARGET_RATE = 200
SETTLE_TIMEOUT_S = 60
UNSETTLED = ("PENDING", "PROCESSING")


@dataclass(frozen=True)
class Ledger:
    """What the SQLite file says about the tenant's orders and licenses."""

    orders: dict[str, tuple[str, int]]  # id -> (status, quantity)
    licenses: int

    @classmethod
    def read(cls, db_path: Path, tenant: Tenant) -> Ledger:
        with contextlib.closing(read_only(db_path)) as conn:
            rows = conn.execute(
                "SELECT id, status, quantity FROM orders WHERE customer_id = ?", (tenant.customer_id,)
            ).fetchall()
            (licenses,) = conn.execute(
                "SELECT total_licenses FROM products WHERE id = ?", (tenant.product_id,)
            ).fetchone()
        return cls({r[0]: (r[1], r[2]) for r in rows}, licenses)

    def unsettled(self) -> int:
        return sum(1 for status, _ in self.orders.values() if status in UNSETTLED)


async def _settled(db_path: Path, tenant: Tenant) -> tuple[Ledger, float]:
    """The ledger once no order of the tenant is still in flight, and how long that took."""
    started = time.monotonic()
    while True:
        ledger = await asyncio.to_thread(Ledger.read, db_path, tenant)
        waited = time.monotonic() - started
        if ledger.unsettled() == 0 or waited > SETTLE_TIMEOUT_S:
            return ledger, waited
        await asyncio.sleep(0.05)


async def purchases_figure(config: Config, checks: Checks) -> tuple[str, list[Target]]:
    db = config.workdir / "purchases.sqlite3"
    seeded = await asyncio.to_thread(seed_demo, db)
    async with serve("purchases-gateway", "gateway.asgi:app", server_env(db), config.workdir) as gateway:
        tenant = await prepare_tenant(gateway.url, seeded)
        before = await asyncio.to_thread(Ledger.read, db, tenant)
        body = graphql_body(BUY, {"c": tenant.customer_id, "p": tenant.product_id})
        script = write_script(config.workdir / "buy.lua", body=body, token=tenant.token, must_contain='"userErrors":[]')
        runs: list[WrkResult] = []
        labels = ["warm-up", "measured", "profiled (flamegraph)", "profiled (stacks)"]
        # Warm-up (its orders are checked too, not timed).
        runs.append(
            await run_wrk(gateway.url, script, connections=config.buy_connections, seconds=config.warmup_seconds)
        )
        cpu = gateway.cpu_seconds()
        measured = await run_wrk(gateway.url, script, connections=config.buy_connections, seconds=config.seconds)
        cpu_s = gateway.cpu_seconds() - cpu
        runs.append(measured)
        after, settle_s = await _settled(db, tenant)
        cpu_settled_s = gateway.cpu_seconds() - cpu
        if config.profiler is not None:

            async def profiled() -> None:
                runs.append(
                    await run_wrk(gateway.url, script, connections=config.buy_connections, seconds=config.seconds)
                )

            await config.profiler.profile(gateway.pid, "purchases-gateway", profiled)
            after, _ = await _settled(db, tenant)
        problems = gateway.log_problems()

    answered = sum(r.requests for r in runs)
    new = {k: v for k, v in after.orders.items() if k not in before.orders}
    statuses: dict[str, int] = {}
    for status, _ in new.values():
        statuses[status] = statuses.get(status, 0) + 1
    added = after.licenses - before.licenses
    wrk_errors = sum(r.error_count for r in runs)
    where = "; ".join(f"{label}: {r.error_kinds()}" for label, r in zip(labels, runs, strict=False) if r.error_count)
    failures = sum(r.failures for r in runs)
    first_failure = next((r.first_failure for r in runs if r.first_failure), "")
    checks.check(
        "purchases: no wrk errors (connect, read, write, timeout, HTTP >= 400)",
        wrk_errors == 0,
        f"{wrk_errors} ({where})" if where else str(wrk_errors),
    )
    checks.check(
        "purchases: every answer is HTTP 200 with an order and no errors or userErrors",
        failures == 0 and sum(r.checked for r in runs) == answered,
        f"{answered} answers checked" if failures == 0 else f"{failures} of {answered}: {first_failure}",
    )
    checks.check(
        f"purchases: settled within {SETTLE_TIMEOUT_S} s",
        after.unsettled() == 0,
        f"{after.unsettled()} still in flight",
    )
    checks.check(
        "purchases: every order SUCCEEDED",
        bool(new) and statuses.get("SUCCEEDED", 0) == len(new),
        ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
    )
    # wrk stops with up to one request per connection in flight: the server may place those too.
    in_flight = config.buy_connections * len(runs)
    checks.check(
        "purchases: one order per answered request (plus at most those in flight when wrk stopped)",
        answered <= len(new) <= answered + in_flight,
        f"{len(new)} orders, {answered} answers",
    )
    checks.check(
        "purchases: licenses grew by exactly the licenses ordered",
        added == sum(q for _, q in new.values()) == len(new),
        f"+{added} licenses for {len(new)} orders of 1",
    )
    checks.check("purchases: no errors in the gateway's log", not problems, problems[0] if problems else "")

    rows = [
        [
            fmt(measured.rate, 1),
            fmt(measured.p50_ms, 1),
            fmt(measured.p99_ms, 1),
            fmt(measured.max_ms, 1),
            fmt(cpu_s * 1000 / measured.requests if measured.requests else float("nan"), 2),
            fmt(100 * measured.client_cpu_share, 0),
            measured.requests,
            fmt(settle_s, 2),
            ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
            f"+{added} for {len(new)} orders",
        ]
    ]
    headers = [
        "orders/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms/order",
        "wrk CPU %",
        "orders (measured run)",
        "settled after s",
        "all orders (SQLite)",
        "licenses",
    ]
    notes = [
        f"wrk: 1 thread, {config.buy_connections} connections, {config.seconds} s after {config.warmup_seconds} s "
        "of warm-up; orders/s counts answered buyLicenses of the measured run.",
        "Server CPU ms/order: the uvicorn process's CPU during the measured run / its orders "
        f"(with the settlement tail: {fmt(cpu_settled_s * 1000 / max(measured.requests, 1), 2)}).",
        "Settled after: from the end of the measured run until no order is PENDING or PROCESSING in the SQLite "
        "file; statuses and licenses are read from the file (every run, warm-up and any profiled run included).",
    ]
    target = Target(
        "purchases",
        f">= {TARGET_RATE} orders/s from {config.buy_connections} clients, all SUCCEEDED, licenses exact",
        f"{measured.rate:.0f}/s, p99 {measured.p99_ms:.0f} ms",
        measured.rate >= TARGET_RATE,
    )
    return table(headers, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes), [target]

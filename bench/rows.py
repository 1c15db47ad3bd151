"""Figure 4: how a read's cost grows with the rows it lists.

Three reads a dashboard repeats (figure 1's dashboard read, ``orders(first:
50)`` with summaries, ``customers(first: 100)``) on a demo tenant grown by 10,
then (on a second file) by 1,000 rows of what they list: products, cards,
orders of two lines each and customers, inserted into the freshly seeded
SQLite file before the gateway starts (as tests/api/test_statement_counts.py
grows its tenants). The gateway, started as the Procfile starts it, is loaded
by wrk once per read and size after a short warm-up.

The SQL statements a read costs are the database's own count
(``Database.statements``), which the running gateway shows nowhere (not in
/metrics). So a child process (this file run as a script) grows the file,
then serves each read in-process on it (``create_app`` through httpx's ASGI
transport) and reads the counter before and after, as the test does. Being
a child keeps the gateway's imports, logging and garbage-collector settings
out of the bench process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from harness import (
    ROOT,
    Checks,
    Config,
    Server,
    Target,
    fmt,
    graphql_body,
    http_client,
    post_graphql,
    read_only,
    seed_demo,
    serve,
    server_env,
    table,
)
from read import DASHBOARD, Run
from wrkload import run_wrk, write_script

__all__ = ["rows_figure"]

SIZES = (10, 1000)
CONNECTIONS = 8  # enough to keep one worker busy; latency stays mostly the read's own

MONEY = "amount minorUnits currency"
ORDERS = f"""query($c: ID!) {{
  orders(actingCustomer: $c, first: 50) {{
    edges {{ node {{ id status total {{ amount }} summary {{
      lines {{ description quantity unitPrice {{ {MONEY} }} amount {{ {MONEY} }} }}
      subtotal {{ {MONEY} }} total {{ {MONEY} }} billingInterval
    }} paymentMethod {{ id last4 }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
CUSTOMERS = "{ customers(first: 100) { edges { node { id name } } pageInfo { hasNextPage } } }"

Tally = dict[str, int]  # rows in the file: the customer's products, cards and orders, the partner's customers


@dataclass(frozen=True)
class Read:
    label: str
    query: str
    found: Callable[[dict[str, Any]], Tally]  # what the answer's data lists
    expected: Callable[[Tally], Tally]  # what it should list, given the file's rows


READS = (
    Read(
        "dashboard",
        DASHBOARD,
        lambda d: {"products": len(d["products"]), "cards": len(d["billingDetails"]["paymentMethods"])},
        lambda t: {"products": t["products"], "cards": t["cards"]},  # not paginated: all of them
    ),
    Read(
        "orders(first: 50)",
        ORDERS,
        lambda d: {"orders": len(d["orders"]["edges"]), "more": d["orders"]["pageInfo"]["hasNextPage"]},
        lambda t: {"orders": min(50, t["orders"]), "more": t["orders"] > 50},
    ),
    Read(
        "customers(first: 100)",
        CUSTOMERS,
        lambda d: {"customers": len(d["customers"]["edges"]), "more": d["customers"]["pageInfo"]["hasNextPage"]},
        lambda t: {"customers": min(100, t["customers"]), "more": t["customers"] > 100},
    ),
)


def _variables(read: Read, customer_id: str) -> dict[str, Any]:
    return {"c": customer_id} if "$c" in read.query else {}


@dataclass
class Measured:
    read: Read
    rows: int
    statements: list[int]  # the first request, then a repeat
    answer_bytes: int
    run: Run


# --- the bench process --------------------------------------------------------


async def rows_figure(config: Config, checks: Checks) -> tuple[str, list[Target]]:
    """Markdown for figure 4; it has no target of the issue, only checks."""
    measured: list[Measured] = []
    for rows in SIZES:
        measured += await _size(config, checks, rows)
    for read in READS:
        counts = [m.statements for m in measured if m.read is read]
        checks.check(
            f"rows: {read.label}: the same SQL statements with {SIZES[0]:,} and {SIZES[1]:,} rows",
            all(c == counts[0] for c in counts),
            " vs ".join("/".join(map(str, c)) for c in counts) + " (first/repeat)",
        )
    return _report(measured, config), []


async def _size(config: Config, checks: Checks, rows: int) -> list[Measured]:
    db = config.workdir / f"rows-{rows}.sqlite3"
    seeded = await asyncio.to_thread(seed_demo, db)
    token, customer_id = seeded["tokens"]["PARTNER_OWNER"], seeded["customers"][0]["id"]
    child = await asyncio.to_thread(_in_child, db, rows, seeded["partner"]["id"], customer_id, token)
    tally = await asyncio.to_thread(_tally, db, seeded["partner"]["id"], customer_id)
    found: list[Measured] = []
    async with serve(f"rows-{rows}-gateway", "gateway.asgi:app", server_env(db), config.workdir) as gateway:
        async with http_client() as client:
            answers = [
                await post_graphql(client, gateway.url, token, graphql_body(r.query, _variables(r, customer_id)))
                for r in READS
            ]
        for read, response in zip(READS, answers, strict=True):
            _answer_checks(checks, read, rows, response.status_code, response.content, tally, child["answers"])
            body = graphql_body(read.query, _variables(read, customer_id))
            name = read.label.split("(")[0]
            script = write_script(
                config.workdir / f"rows-{rows}-{name}.lua", body=body, token=token, must_equal=response.content
            )
            warmup = await _measure(gateway, script, config.warmup_seconds)  # checked, not reported
            run = await _measure(gateway, script, config.seconds)
            _run_checks(checks, f"{read.label} at {rows:,} rows", [warmup, run])
            found.append(Measured(read, rows, child["statements"][read.label], len(response.content), run))
        problems = gateway.log_problems()
        first = problems[0] if problems else ""
        checks.check(f"rows: no errors in the {rows:,}-row gateway's log", not problems, first)
    return found


def _in_child(db: Path, rows: int, partner_id: str, customer_id: str, token: str) -> dict[str, Any]:
    """Grow the file and count each read's statements, in a child process (see the module's text)."""
    argv = [sys.executable, __file__, str(db), str(rows), partner_id, customer_id, token]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"growing {db.name} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _tally(db: Path, partner_id: str, customer_id: str) -> Tally:
    with read_only(db) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM products WHERE customer_id = :c),"
            " (SELECT count(*) FROM payment_methods WHERE customer_id = :c),"
            " (SELECT count(*) FROM orders WHERE customer_id = :c),"
            " (SELECT count(*) FROM customers WHERE partner_id = :p)",
            {"c": customer_id, "p": partner_id},
        ).fetchone()
    return dict(zip(("products", "cards", "orders", "customers"), row, strict=True))


def _answer_checks(
    checks: Checks, read: Read, rows: int, status: int, answer: bytes, tally: Tally, in_process: dict[str, Any]
) -> None:
    where = f"rows: {read.label} at {rows:,} rows"
    body: dict[str, Any] = json.loads(answer) if status == 200 else {}
    ok = status == 200 and not body.get("errors") and bool(body.get("data"))
    if not checks.check(f"{where}: HTTP 200, data, no errors", ok, "" if ok else f"{status} {answer[:300]!r}"):
        return
    found, expected = read.found(body["data"]), read.expected(tally)
    checks.check(f"{where}: lists what the file holds", found == expected, f"{found}, expected {expected}")
    same = in_process.get(read.label) == body
    checks.check(f"{where}: the statement-counting gateway answered the same", same)


async def _measure(server: Server, script: Path, seconds: int) -> Run:
    cpu = server.cpu_seconds()
    result = await run_wrk(server.url, script, connections=CONNECTIONS, seconds=seconds)
    return Run(result, server.cpu_seconds() - cpu)


def _run_checks(checks: Checks, where: str, runs: list[Run]) -> None:
    errors = sum(r.wrk.error_count for r in runs)
    answers, checked = sum(r.wrk.requests for r in runs), sum(r.wrk.checked for r in runs)
    failures = sum(r.wrk.failures for r in runs)
    first = next((r.wrk.first_failure for r in runs if r.wrk.first_failure), "")
    checks.check(
        f"rows: {where}: no wrk errors, every answer HTTP 200 and byte for byte the checked one",
        errors == 0 and failures == 0 and checked == answers,
        f"{checked} answers checked, {errors} wrk errors" + (f"; {failures} differ: {first}" if failures else ""),
    )


def _report(measured: list[Measured], config: Config) -> str:
    measured = sorted(measured, key=lambda m: READS.index(m.read))  # by read, then size
    rows = []
    for m in measured:
        first, repeat = m.statements
        rows.append(
            [
                m.read.label,
                f"{m.rows:,}",
                str(repeat) if first == repeat else f"{repeat} (first {first})",
                fmt(m.run.wrk.rate, 0),
                fmt(m.run.wrk.p50_ms, 2),
                fmt(m.run.wrk.p99_ms, 2),
                fmt(m.run.cpu_ms_per_request, 3),
            ]
        )
    headers = ["query", "rows", "statements", "req/s", "p50 ms", "p99 ms", "server CPU ms/req"]
    sizes = "; ".join(f"{m.read.label} {m.answer_bytes / 1024:,.1f} KiB at {m.rows:,}" for m in measured)
    notes = [
        f"wrk: 1 thread, {CONNECTIONS} connections, one {config.seconds} s run per read and size after "
        f"{config.warmup_seconds} s of warm-up; every answer checked byte for byte.",
        "rows: that many products, cards, orders (two lines each) and customers inserted into the seeded file "
        "on top of the demo's; the dashboard lists all of the customer's products and cards, the others one page.",
        "statements: SQL statements per request, counted by the database (`Database.statements`) in an "
        "in-process gateway on the same file; a repeat of the read (the first request, if it differs).",
        f"Answer sizes: {sizes}.",
        "Server CPU: user + system time of the uvicorn process (/proc/<pid>/stat, 10 ms ticks) / requests.",
    ]
    return table(headers, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


# --- the child process: grow the file, count statements ----------------------
# The gateway's own modules are imported here only, never by the bench process.


async def _grow(db_path: Path, rows: int, partner_id: str, customer_id: str) -> None:
    """``rows`` products, cards, orders (each with two lines) and customers more."""
    from models import (
        BillingInterval,
        Customer,
        Order,
        OrderKind,
        OrderLine,
        OrderStatus,
        PaymentMethod,
        PlanKind,
        Product,
        utcnow,
    )
    from models.database import Database

    db = Database(f"sqlite+aiosqlite:///{db_path}")
    now = utcnow()
    try:
        async with db.orm(write=True) as session:
            for n in range(rows):
                card = PaymentMethod(
                    customer_id=customer_id,
                    provider_ref=f"ref{n}",
                    brand="visa",
                    last4=f"{n % 10000:04d}",
                    exp_month=1,
                    exp_year=2030,
                )
                order = Order(
                    customer_id=customer_id,
                    partner_id=partner_id,
                    kind=OrderKind.LICENSE_PURCHASE,
                    status=OrderStatus.SUCCEEDED,
                    billing_interval=BillingInterval.MONTHLY,
                    subtotal_minor=100,
                    total_minor=100,
                    quantity=1,
                    payment_method_id=card.id,
                    request_fingerprint="x",
                    provider_idempotency_key=f"k{n}",
                    created_at=now - timedelta(seconds=n),
                )
                session.add_all(
                    [
                        card,
                        Product(
                            customer_id=customer_id,
                            plan_id="plan_backup_essentials",
                            plan_kind=PlanKind.BACKUP,
                            billing_interval=BillingInterval.MONTHLY,
                            total_licenses=n + 1,
                            period_anchor=now,
                            current_period_start=now,
                            current_period_end=now + timedelta(days=30),
                        ),
                        order,
                        *(
                            OrderLine(
                                order_id=order.id,
                                position=p,
                                description="line",
                                quantity=1,
                                unit_price_minor=50,
                                amount_minor=50,
                            )
                            for p in range(2)
                        ),
                        Customer(partner_id=partner_id, name=f"Customer {n:04d}"),
                    ]
                )
    finally:
        await db.dispose()


async def _count(db_path: Path, customer_id: str, token: str) -> dict[str, Any]:
    """Each read twice through an in-process gateway on the file: statements per request, and the answer."""
    from gateway.app import create_app
    from settings import Settings

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}",
        rate_limit=None,
        max_connections_per_token=0,
        sandbox_confirm_delay_ms=0,
        log_level="WARNING",
        # Nothing of the gateway's own runs meanwhile to add to the count.
        reconcile_interval_s=0,
        renewal_interval_s=0,
    )
    app = create_app(settings)
    statements: dict[str, list[int]] = {}
    answers: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pbg")
    async with app.router.lifespan_context(app), client:
        db = app.state.runtime.db
        for read in READS:
            body = graphql_body(read.query, _variables(read, customer_id))
            statements[read.label] = []
            for _ in range(2):
                before = db.statements
                response = await client.post("/graphql", content=body, headers=headers)
                statements[read.label].append(db.statements - before)
            answers[read.label] = response.json() if response.status_code == 200 else response.status_code
    return {"statements": statements, "answers": answers}


async def _child(db_path: Path, rows: int, partner_id: str, customer_id: str, token: str) -> dict[str, Any]:
    await _grow(db_path, rows, partner_id, customer_id)
    return await _count(db_path, customer_id, token)


if __name__ == "__main__":
    _path, _rows, _partner, _customer, _token = sys.argv[1:]
    print(json.dumps(asyncio.run(_child(Path(_path), int(_rows), _partner, _customer, _token))))

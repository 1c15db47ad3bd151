"""Figure 1: the dashboard read against the floor and a plain Strawberry app.

Three servers run side by side on one fresh SQLite file, each started as the
Procfile starts the gateway: the gateway, the floor (``floor.py``, answering
with the gateway's own answer, byte for byte) and the plain Strawberry app
(``plain_strawberry.py``, the same query shape from the same file). wrk loads
each in turn, ``rounds`` times, alternating, so a change in the machine's load
touches all three alike; the median run of each is reported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness import (
    BENCH,
    Checks,
    Config,
    Server,
    Target,
    fmt,
    graphql_body,
    http_client,
    median,
    post_graphql,
    prepare_tenant,
    seed_demo,
    serve,
    server_env,
    table,
)
from wrkload import WrkResult, run_wrk, write_script

__all__ = ["DASHBOARD", "Run", "read_figure"]

DASHBOARD = """query Dashboard($c: ID!) {
  viewer { id email role partner { id name } }
  products(actingCustomer: $c) {
    id billingInterval totalLicenses assignedLicenses availableLicenses currentPeriodEnd
    plan { id name kind price(interval: MONTHLY) { amount currency } }
  }
  billingDetails(actingCustomer: $c) { paymentMethods { id brand last4 expMonth expYear isPrimary } }
}"""

TARGET_SHARE, AIM_SHARE = 0.12, 0.25


@dataclass(frozen=True)
class Run:
    wrk: WrkResult
    server_cpu_s: float

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1000 / self.wrk.requests if self.wrk.requests else float("nan")


@dataclass
class Subject:
    label: str
    server: Server
    script: Path
    runs: list[Run]

    def median_of(self, pick: Callable[[Run], float]) -> float:
        return median([pick(r) for r in self.runs])


async def _profiled(runs: list[Run], measuring: Awaitable[Run]) -> None:
    runs.append(await measuring)  # checked with the others, never reported


def _rate(run: Run) -> float:
    return run.wrk.rate


def _dashboard_checks(checks: Checks, answer: bytes) -> None:
    body: dict[str, Any] = json.loads(answer)
    data = body.get("data") or {}
    ok = "errors" not in body
    checks.check("read: the gateway answers the dashboard read without errors", ok, "" if ok else answer[:300].decode())
    checks.check(
        "read: the answer has the products and exactly one card",
        bool(data.get("products")) and len((data.get("billingDetails") or {}).get("paymentMethods") or []) == 1,
        f"{len(data.get('products') or [])} products",
    )


async def _measure(subject: Subject, config: Config, seconds: int) -> Run:
    cpu = subject.server.cpu_seconds()
    result = await run_wrk(subject.server.url, subject.script, connections=config.read_connections, seconds=seconds)
    return Run(result, subject.server.cpu_seconds() - cpu)


def _run_checks(checks: Checks, subject: Subject, runs: list[Run]) -> None:
    errors = sum(r.wrk.error_count for r in runs)
    checks.check(
        f"read: {subject.label}: no wrk errors (connect, read, write, timeout, HTTP >= 400)", errors == 0, str(errors)
    )
    answers, checked = sum(r.wrk.requests for r in runs), sum(r.wrk.checked for r in runs)
    failures = sum(r.wrk.failures for r in runs)
    first = next((r.wrk.first_failure for r in runs if r.wrk.first_failure), "")
    checks.check(
        f"read: {subject.label}: every answer HTTP 200 and byte for byte the reference answer",
        failures == 0 and checked == answers,
        f"{checked} answers checked" if failures == 0 else f"{failures} of {checked} checked differ: {first}",
    )


async def _answer(client: httpx.AsyncClient, server: Server, body: bytes, token: str) -> bytes:
    response = await post_graphql(client, server.url, token, body)
    return response.content if response.status_code == 200 else f"HTTP {response.status_code}".encode()


async def read_figure(config: Config, checks: Checks) -> tuple[str, list[Target], list[str]]:
    """Markdown for figure 1, the targets it measures, and the commands that served it."""
    db = config.workdir / "read.sqlite3"
    seeded = await asyncio.to_thread(seed_demo, db)
    async with serve("read-gateway", "gateway.asgi:app", server_env(db), config.workdir) as gateway:
        tenant = await prepare_tenant(gateway.url, seeded)
        body = graphql_body(DASHBOARD, {"c": tenant.customer_id})
        async with http_client() as client:
            answer = await _answer(client, gateway, body, tenant.token)
        _dashboard_checks(checks, answer)
        answer_file = config.workdir / "dashboard-answer.json"
        answer_file.write_bytes(answer)
        floor_env = server_env(db, FLOOR_BODY_FILE=str(answer_file), PYTHONPATH=str(BENCH))
        plain_env = server_env(db, PLAIN_DATABASE=str(db), PYTHONPATH=str(BENCH))
        async with (
            serve("read-floor", "floor:app", floor_env, config.workdir) as floor,
            serve("read-plain", "plain_strawberry:app", plain_env, config.workdir) as plain,
        ):
            async with http_client() as client:
                floor_answer = await _answer(client, floor, body, tenant.token)
                plain_answer = await _answer(client, plain, body, tenant.token)
            checks.check("read: the floor answers with the gateway's bytes", floor_answer == answer)
            same_data = json.loads(plain_answer) == json.loads(answer)
            checks.check(
                "read: plain Strawberry answers the same data",
                same_data,
                "" if same_data else plain_answer[:300].decode(errors="replace"),
            )
            subjects = []
            for label, server, expected in (
                ("floor", floor, answer),
                ("gateway", gateway, answer),
                ("plain Strawberry", plain, plain_answer),
            ):
                script = write_script(
                    config.workdir / f"read-{server.name}.lua", body=body, token=tenant.token, must_equal=expected
                )
                subjects.append(Subject(label, server, script, []))
            warmups: dict[str, list[Run]] = {}
            for subject in subjects:  # warm-up: caches, allocator, branch predictors; checked, not reported
                warmups[subject.label] = [await _measure(subject, config, config.warmup_seconds)]
            for _ in range(config.rounds):
                for subject in subjects:
                    subject.runs.append(await _measure(subject, config, config.seconds))
            if config.profiler is not None:
                await config.profiler.profile(
                    gateway.pid,
                    "read-gateway",
                    lambda: _profiled(warmups["gateway"], _measure(subjects[1], config, config.seconds)),
                )
            for subject in subjects:
                _run_checks(checks, subject, warmups[subject.label] + subject.runs)
        problems = gateway.log_problems()
        checks.check("read: no errors in the gateway's log", not problems, problems[0] if problems else "")
        commands = [s.server.command() for s in subjects]
    return _report(subjects, config, answer, plain_answer == answer), _targets(subjects), commands


def _report(subjects: list[Subject], config: Config, answer: bytes, plain_identical: bool) -> str:
    floor_rate = subjects[0].median_of(_rate)
    rows = []
    for s in subjects:
        rate = s.median_of(_rate)
        rows.append(
            [
                s.label,
                fmt(rate, 0),
                " / ".join(fmt(r.wrk.rate, 0) for r in s.runs),
                fmt(100 * rate / floor_rate, 1) if floor_rate else "n/a",
                fmt(s.median_of(lambda r: r.wrk.p50_ms), 2),
                fmt(s.median_of(lambda r: r.wrk.p99_ms), 2),
                fmt(s.median_of(lambda r: r.cpu_ms_per_request), 3),
                fmt(100 * s.median_of(lambda r: r.wrk.client_cpu_share), 0),
                sum(r.wrk.requests for r in s.runs),
            ]
        )
    headers = [
        "server",
        "req/s (median)",
        "req/s per run",
        "% of floor",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "wrk CPU %",
        "requests",
    ]
    notes = [
        f"wrk: 1 thread, {config.read_connections} connections, {config.seconds} s per run after "
        f"{config.warmup_seconds} s of warm-up per server; {config.rounds} run(s) per server, alternating "
        "floor, gateway, plain Strawberry; medians of the runs.",
        f"The answer is {len(answer)} bytes of JSON; the floor sends the gateway's bytes. "
        f"Plain Strawberry's answer is {'byte for byte the same' if plain_identical else 'the same data'}.",
        "Server CPU: user + system time of the uvicorn process (/proc/<pid>/stat, 10 ms ticks) / requests. "
        "wrk CPU: wrk's own CPU time / wall time (100% would mean wrk limits the rate).",
    ]
    return table(headers, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def _targets(subjects: list[Subject]) -> list[Target]:
    floor, gateway, plain = (s.median_of(_rate) for s in subjects)
    share = gateway / floor if floor else 0.0
    plain_share = plain / floor if floor else 0.0
    return [
        Target(
            "dashboard read",
            f">= {TARGET_SHARE:.0%} of the floor's req/s (aim {AIM_SHARE:.0%}), ahead of plain Strawberry",
            f"{share:.1%} (plain Strawberry {plain_share:.1%})",
            share >= TARGET_SHARE and share > plain_share,
        )
    ]

"""Figure 3: one purchase fanned out to N live subscribers of one customer.

For each N, on a fresh SQLite file and gateway:

1. warm-up: a few subscribers, one order, closed again; the server's RSS then
   is the baseline;
2. N subscribers connect (``graphql-transport-ws``, signed in through
   ``connection_init``, each subscribed to ``orderStatusChanged`` of the
   customer), spread over ``client_processes`` client processes
   (``subscribers.py``); connecting ends when the gateway's
   ``pbg_subscriptions_active`` gauge shows all N;
3. one unmeasured order proves every subscription is live (each must get it),
   then RSS is read again: (RSS - baseline) / N is the memory per connection;
4. ``rounds`` measured orders: for each subscriber, the time from sending
   ``buyLicenses`` to receiving that order's SUCCEEDED event.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import httpx

from harness import (
    Checks,
    Config,
    Server,
    Target,
    Tenant,
    fmt,
    gql,
    http_client,
    median,
    percentile,
    prepare_tenant,
    seed_demo,
    serve,
    server_env,
    table,
)
from subscribers import client_main

__all__ = ["fanout_figure"]

SUBSCRIPTION = """subscription Orders($c: ID) {
  orderStatusChanged(actingCustomer: $c) { status cursor order { id status total { amount } } }
}"""

BUY = """mutation Buy($c: ID!, $p: ID!) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: 1}) { order { id } userErrors { code message } }
}"""

WARM_SUBSCRIBERS = 50
HANDSHAKES_AT_ONCE = 50  # per client process
COMMAND_TIMEOUT_S = 180
ROUND_TIMEOUT_S = 30
MEMORY_TARGET_KIB = 40
PROFILED_ORDERS = 3
# p99 targets from the issue: (subscribers, milliseconds); other counts have none.
P99_TARGETS_MS = {1000: 250, 5000: 1000}


class Fleet:
    """The client processes, each with its own loop and share of the sockets."""

    def __init__(self, processes: int, token: str, customer_id: str) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process running a loop and threads
        init = json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}).encode()
        subscribe = json.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"c": customer_id}}}
        ).encode()
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=client_main, args=(child, init, subscribe), daemon=True)
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    async def ask(self, commands: list[dict[str, Any]], timeout_s: float = COMMAND_TIMEOUT_S) -> list[dict[str, Any]]:
        """Send one command to each process (in order) and gather their replies."""
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)

        def receive(pipe: Connection) -> dict[str, Any]:
            if not pipe.poll(timeout_s):
                raise RuntimeError(f"a client process did not answer {commands[0]['verb']} within {timeout_s}s")
            reply: dict[str, Any] = pipe.recv()
            return reply

        return list(await asyncio.gather(*(asyncio.to_thread(receive, p) for p in self.pipes)))

    async def all(self, verb: str, **fields: Any) -> list[dict[str, Any]]:
        return await self.ask([{"verb": verb, **fields} for _ in self.pipes])

    async def open(self, server: Server, count: int) -> tuple[int, list[dict[str, Any]]]:
        shares = [count // len(self.pipes) + (1 if i < count % len(self.pipes) else 0) for i in range(len(self.pipes))]
        replies = await self.ask(
            [
                {
                    "verb": "open",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "uri": server.ws_url,
                    "count": share,
                    "at_once": HANDSHAKES_AT_ONCE,
                    "timeout_s": COMMAND_TIMEOUT_S / 2,
                }
                for share in shares
            ]
        )
        return sum(r["opened"] for r in replies), replies

    def stop(self) -> float:
        """Ask every process to exit; their total CPU seconds."""
        cpu = 0.0
        for pipe in self.pipes:
            try:
                pipe.send({"verb": "exit"})
                if pipe.poll(10):
                    cpu += pipe.recv()["cpu"]
            except (BrokenPipeError, EOFError, OSError):
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        return cpu


@dataclass(frozen=True)
class Round:
    subscribers: int
    latencies_ms: list[float]
    buy_ms: float
    server_cpu_s: float
    client_cpu_s: float  # all client processes
    busiest_client_share: float  # the busiest process's CPU / the round's duration
    errors: list[str]

    @property
    def complete(self) -> bool:
        return len(self.latencies_ms) == self.subscribers

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


@dataclass
class Case:
    subscribers: int
    connected: int
    connect_s: float
    live_s: float
    baseline_kib: int
    rss_kib: int
    rss_after_kib: int
    rounds: list[Round]
    errors: list[str]

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_kib - self.baseline_kib) / self.subscribers

    def median_of(self, pick: Callable[[Round], float]) -> float:
        return median([pick(r) for r in self.rounds])


async def _active(client: httpx.AsyncClient, server: Server) -> int:
    text = (await client.get(server.url + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("pbg_subscriptions_active"):
            return int(float(line.split()[-1]))
    raise RuntimeError("no pbg_subscriptions_active in /metrics")


async def _until_active(client: httpx.AsyncClient, server: Server, wanted: int, timeout_s: float) -> bool:
    """Wait until the gateway serves ``wanted`` subscriptions (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await _active(client, server) == wanted:
            return True
        await asyncio.sleep(0.05)
    return False


async def _round(fleet: Fleet, client: httpx.AsyncClient, server: Server, tenant: Tenant, expected: int) -> Round:
    """Buy one order; every subscriber's time to its SUCCEEDED event."""
    before = await fleet.all("cpu")
    cpu = server.cpu_seconds()
    variables = {"c": tenant.customer_id, "p": tenant.product_id}
    sent = time.monotonic()
    data = await gql(client, server.url, tenant.token, BUY, variables)
    buy_ms = (time.monotonic() - sent) * 1000
    order_id = data["buyLicenses"]["order"]["id"]
    replies = await fleet.all("wait", order_id=order_id, timeout_s=ROUND_TIMEOUT_S)
    arrivals = [at for r in replies for at in r["arrivals"]]
    duration = max(arrivals, default=sent) - sent
    client_cpu = [r["cpu"] - b["cpu"] for r, b in zip(replies, before, strict=True)]
    return Round(
        subscribers=expected,
        latencies_ms=[(at - sent) * 1000 for at in arrivals],
        buy_ms=buy_ms,
        server_cpu_s=server.cpu_seconds() - cpu,
        client_cpu_s=sum(client_cpu),
        busiest_client_share=max(client_cpu) / duration if duration > 0 else float("nan"),
        errors=[e for r in replies for e in r["errors"]],
    )


async def _case(config: Config, checks: Checks, n: int) -> Case:
    db = config.workdir / f"fanout-{n}.sqlite3"
    seeded = await asyncio.to_thread(seed_demo, db)
    async with serve(f"fanout-{n}-gateway", "gateway.asgi:app", server_env(db), config.workdir) as server:
        tenant = await prepare_tenant(server.url, seeded)
        fleet = Fleet(config.client_processes, tenant.token, tenant.customer_id)
        errors: list[str] = []
        try:
            async with http_client() as client:
                # 1. Warm the code paths, then the baseline with nothing open.
                warm = min(WARM_SUBSCRIBERS, n)
                await fleet.open(server, warm)
                if await _until_active(client, server, warm, 30):
                    await _round(fleet, client, server, tenant, warm)
                await fleet.all("close")
                checks.check(f"fan-out {n}: warm-up subscribers closed", await _until_active(client, server, 0, 30))
                baseline = server.rss_kib()
                # 2. Connect N.
                started = time.monotonic()
                connected, replies = await fleet.open(server, n)
                errors += [e for r in replies for e in r["errors"]]
                all_active = await _until_active(client, server, n, COMMAND_TIMEOUT_S)
                connect_s = time.monotonic() - started
                checks.check(
                    f"fan-out {n}: all {n} subscribers connected and subscribed",
                    connected == n and all_active,
                    f"{connected} acknowledged; {await _active(client, server)} subscriptions active",
                )
                # 3. Every subscription live; memory per connection.
                proof = await _round(fleet, client, server, tenant, n)
                live_s = time.monotonic() - started
                errors += proof.errors
                checks.check(
                    f"fan-out {n}: every subscriber got the unmeasured first order",
                    proof.complete,
                    f"{len(proof.latencies_ms)} of {n}",
                )
                rss = server.rss_kib()
                # 4. Measured orders.
                rounds = []
                for _ in range(config.rounds):
                    measured = await _round(fleet, client, server, tenant, n)
                    errors += measured.errors
                    rounds.append(measured)
                rss_after = server.rss_kib()
                if config.profiler is not None:  # after the measured orders: they are not profiled

                    async def profiled() -> None:
                        for _ in range(PROFILED_ORDERS):
                            errors.extend((await _round(fleet, client, server, tenant, n)).errors)

                    await config.profiler.profile(server.pid, f"fanout-{n}-gateway", profiled)
                await fleet.all("close")
                await _until_active(client, server, 0, 60)
        finally:
            fleet.stop()
        problems = server.log_problems()
    missing = [len(r.latencies_ms) for r in rounds if not r.complete]
    checks.check(
        f"fan-out {n}: every subscriber got every measured order's SUCCEEDED",
        not missing,
        f"received by {missing} of {n}" if missing else "",
    )
    checks.check(
        f"fan-out {n}: no subscriber errors", not errors, f"{len(errors)}, first: {errors[0]}" if errors else ""
    )
    checks.check(f"fan-out {n}: no errors in the gateway's log", not problems, problems[0] if problems else "")
    return Case(n, connected, connect_s, live_s, baseline, rss, rss_after, rounds, errors)


async def fanout_figure(config: Config, checks: Checks) -> tuple[str, list[Target]]:
    cases = [await _case(config, checks, n) for n in config.subscribers]
    rows = []
    for c in cases:
        rows.append(
            [
                c.subscribers,
                fmt(c.median_of(lambda r: r.p(50)), 0),
                fmt(c.median_of(lambda r: r.p(99)), 0),
                fmt(c.median_of(lambda r: max(r.latencies_ms, default=float("nan"))), 0),
                "yes" if all(r.complete for r in c.rounds) else "no",
                fmt(c.median_of(lambda r: r.buy_ms), 0),
                fmt(c.connect_s, 1),
                fmt(c.live_s, 1),
                fmt(c.kib_per_connection, 1),
                f"{c.baseline_kib / 1024:.1f} / {c.rss_kib / 1024:.1f} / {c.rss_after_kib / 1024:.1f}",
                fmt(c.median_of(lambda r: r.server_cpu_s * 1000 / r.subscribers), 3),
                fmt(c.median_of(lambda r: r.client_cpu_s * 1000), 0),
                fmt(100 * c.median_of(lambda r: r.busiest_client_share), 0),
            ]
        )
    headers = [
        "subscribers",
        "p50 ms",
        "p99 ms",
        "max ms",
        "all got it",
        "buy ms",
        "connect s",
        "live s",
        "KiB/conn",
        "RSS MiB base / N open / after",
        "server CPU ms/sub/order",
        "client CPU ms/order",
        "busiest client CPU %",
    ]
    notes = [
        f"Latency: from sending buyLicenses to each subscriber's SUCCEEDED event for that order; median over "
        f"{config.rounds} measured order(s) per row, after one unmeasured order that every subscriber must get.",
        f"Clients: {config.client_processes} processes (own asyncio loop each, websockets' sans-I/O protocol, "
        f"{HANDSHAKES_AT_ONCE} handshakes at once per process); arrival times from time.monotonic() "
        "(system-wide), compared with the parent's. Client CPU: all processes, per order; busiest client: that "
        "process's CPU / the order's slowest arrival (far under 100%: the clients keep up).",
        "Connect: from the first handshake until the gateway's pbg_subscriptions_active gauge shows all N; "
        "live: until every subscriber has received the unmeasured order.",
        f"KiB/conn: (RSS with N open, after the unmeasured order - baseline) / N; baseline = RSS after "
        f"{WARM_SUBSCRIBERS} subscribers were opened, used and closed. Server CPU: uvicorn process, per "
        "subscriber per order (3 events each: PENDING, PROCESSING, SUCCEEDED).",
    ]
    targets = []
    for c in cases:
        p99 = c.median_of(lambda r: r.p(99))
        limit = P99_TARGETS_MS.get(c.subscribers)
        complete = all(r.complete for r in c.rounds)
        if limit is not None:
            targets.append(
                Target(
                    f"fan-out {c.subscribers}",
                    f"all notified, p99 < {limit} ms",
                    f"p99 {p99:.0f} ms, {'all' if complete else 'NOT all'} notified",
                    complete and p99 < limit,
                )
            )
        targets.append(
            Target(
                f"fan-out {c.subscribers}",
                f"< {MEMORY_TARGET_KIB} KB server memory per connection",
                f"{c.kib_per_connection:.1f} KiB",
                c.kib_per_connection < MEMORY_TARGET_KIB,
            )
        )
    return table(headers, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes), targets

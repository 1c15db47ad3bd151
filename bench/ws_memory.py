"""WebSocket subscriptions: server memory per connection and event fan-out latency.

Opens N graphql-transport-ws connections (cumulatively, in steps), each signed in
through ``connection_init`` and subscribed to
``subscription { orderStatusChanged { status cursor } }``. At each step it reads
the server's RSS (delta from a warmed-up baseline / N), then buys one order and
times how long every subscriber takes to receive its SUCCEEDED event.

Then it compares uvicorn with ``--ws-per-message-deflate false`` (the Procfile)
against uvicorn's default (true), on a smaller N, with a client that offers
permessage-deflate as browsers do.

    python bench/ws_memory.py            # steps 200, 500, 1000; comparison at 200 (about 1.5 minutes)
    python bench/ws_memory.py --quick    # steps 20, 50; comparison at 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from _common import (
    BUY,
    Gateway,
    Tenant,
    banner,
    cpu_seconds,
    footer,
    gateway,
    gql,
    http_client,
    median,
    mib,
    percentile,
    prepare_tenant,
    seed_demo,
    sqlite_url,
    table,
    user_errors,
    workdir,
)

SUBSCRIPTION = "subscription { orderStatusChanged { status cursor } }"
HANDSHAKES_AT_ONCE = 25
OPEN_TIMEOUT_S = 20
ROUND_TIMEOUT_S = 45
SETTLE_S = 1.0


@dataclass
class Fanout:
    """Arrivals of SUCCEEDED events in the current round."""

    expected: int = 0
    arrivals: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)

    def reset(self, expected: int) -> None:
        self.expected, self.arrivals = expected, []
        self.done.clear()

    def arrived(self, at: float) -> None:
        self.arrivals.append(at)
        if len(self.arrivals) >= self.expected:
            self.done.set()


@dataclass
class Subscriber:
    ws: ClientConnection
    reader: asyncio.Task[None]
    deflate: bool


async def _read(ws: ClientConnection, fanout: Fanout) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "next":
                event = (message.get("payload", {}).get("data") or {}).get("orderStatusChanged") or {}
                if event.get("status") == "SUCCEEDED":
                    fanout.arrived(time.perf_counter())
            elif kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind in ("error", "complete"):
                fanout.errors.append(json.dumps(message)[:300])


async def open_subscriber(url: str, token: str, fanout: Fanout, *, compression: str | None) -> Subscriber:
    ws = await connect(
        url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        compression=compression,
        proxy=None,
        open_timeout=OPEN_TIMEOUT_S,
        ping_interval=None,  # browsers send no WebSocket pings; the server's keep-alive is answered
        close_timeout=2,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S))
    if ack.get("type") != "connection_ack":
        await ws.close()
        raise RuntimeError(f"expected connection_ack, got {ack}")
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
    return Subscriber(ws, asyncio.create_task(_read(ws, fanout)), "permessage-deflate" in extensions)


async def open_many(
    server: Gateway, token: str, fanout: Fanout, count: int, *, compression: str | None
) -> list[Subscriber]:
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)

    async def one() -> Subscriber:
        async with gate:
            return await open_subscriber(server.ws_url, token, fanout, compression=compression)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(subscribers: list[Subscriber]) -> None:
    async def one(sub: Subscriber) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sub.ws.close(), 5)
        sub.reader.cancel()

    for start in range(0, len(subscribers), 200):
        await asyncio.gather(*(one(s) for s in subscribers[start : start + 200]))


@dataclass
class Round:
    subscribers: int
    received: int
    mutation_ms: float
    first_ms: float
    p50_ms: float
    p100_ms: float
    server_cpu_ms: float
    client_cpu_ms: float


async def fanout_round(server: Gateway, tenant: Tenant, fanout: Fanout, subscribers: int) -> Round:
    """Buy one order; time until every subscriber has its SUCCEEDED event."""
    fanout.reset(subscribers)
    cpu0, client0 = cpu_seconds(server.pid), time.process_time()
    async with http_client() as client:
        t0 = time.perf_counter()
        data = await gql(
            client, server.url, tenant.token, BUY, {"c": tenant.customer_id, "p": tenant.product_id, "q": 1, "k": None}
        )
        mutation_ms = (time.perf_counter() - t0) * 1000
    if user_errors(data):
        raise RuntimeError(f"buyLicenses: {user_errors(data)}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fanout.done.wait(), ROUND_TIMEOUT_S)
    latencies = [(at - t0) * 1000 for at in fanout.arrivals]
    return Round(
        subscribers=subscribers,
        received=len(latencies),
        mutation_ms=mutation_ms,
        first_ms=min(latencies, default=float("nan")),
        p50_ms=percentile(latencies, 50),
        p100_ms=max(latencies, default=float("nan")),
        server_cpu_ms=(cpu_seconds(server.pid) - cpu0) * 1000,
        client_cpu_ms=(time.process_time() - client0) * 1000,
    )


async def baseline(server: Gateway, tenant: Tenant, fanout: Fanout, *, compression: str | None) -> int:
    """Warm the server's code paths (HTTP, WebSocket, subscriptions, fan-out)
    with a few connections, close them, and return the RSS after."""
    warm = await open_many(server, tenant.token, fanout, 10, compression=compression)
    await asyncio.sleep(SETTLE_S)
    await fanout_round(server, tenant, fanout, len(warm))
    await close_all(warm)
    await asyncio.sleep(SETTLE_S)
    return server.rss_kib()


@dataclass
class Step:
    connections: int
    rss_kib: int
    per_connection_kib: float
    rounds: list[Round]
    rss_after_kib: int


async def scaling(
    server: Gateway, tenant: Tenant, steps: list[int], rounds: int, deadline: float
) -> tuple[int, list[Step], int]:
    """Baseline RSS, one Step per connection count reached, and RSS once all are closed again."""
    fanout = Fanout()
    base = await baseline(server, tenant, fanout, compression=None)
    print(f"baseline RSS after warm-up: {mib(base)} MiB")
    subscribers: list[Subscriber] = []
    results: list[Step] = []
    try:
        for target in steps:
            if time.monotonic() > deadline:
                print(f"time budget spent; stopping before {target} connections")
                break
            opening = time.perf_counter()
            subscribers += await open_many(server, tenant.token, fanout, target - len(subscribers), compression=None)
            opened_s = time.perf_counter() - opening
            await asyncio.sleep(SETTLE_S)
            rss = server.rss_kib()
            warmup = await fanout_round(server, tenant, fanout, len(subscribers))  # every subscription is live
            measured = [await fanout_round(server, tenant, fanout, len(subscribers)) for _ in range(rounds)]
            results.append(Step(len(subscribers), rss, (rss - base) / len(subscribers), measured, server.rss_kib()))
            print(
                f"{len(subscribers)} connections open in {opened_s:.1f}s; RSS {mib(rss)} MiB; "
                f"warm-up round {warmup.received}/{warmup.subscribers} in {warmup.p100_ms:.0f} ms"
            )
    finally:
        await close_all(subscribers)
    await asyncio.sleep(SETTLE_S)
    closed = server.rss_kib()
    if results and time.monotonic() < deadline:
        # Leak check: the same number again. Memory that comes back to be
        # reused leaves RSS flat; a leak would add about as much again.
        again = await open_many(server, tenant.token, fanout, results[-1].connections, compression=None)
        try:
            await asyncio.sleep(SETTLE_S)
            await fanout_round(server, tenant, fanout, len(again))
        finally:
            await close_all(again)
        await asyncio.sleep(SETTLE_S)
        print(
            f"leak check: {len(again)} connections opened, used and closed again: "
            f"RSS {mib(closed)} -> {mib(server.rss_kib())} MiB"
        )
    if fanout.errors:
        print(f"subscription errors: {len(fanout.errors)}, first: {fanout.errors[0]}")
    return base, results, closed


@dataclass
class DeflateResult:
    server_flag: str
    connections: int
    negotiated: int
    base_kib: int
    rss_kib: int

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_kib - self.base_kib) / self.connections


async def deflate_case(db_url: str, tmp: Path, seeded: dict[str, Any], *, deflate: bool, n: int) -> DeflateResult:
    async with gateway(db_url, tmp, deflate=deflate, name=f"deflate-{deflate}") as server:
        async with http_client() as client:
            tenant = await prepare_tenant(client, server.url, seeded, customer=1)
        fanout = Fanout()
        # The client offers permessage-deflate, as every browser does.
        base = await baseline(server, tenant, fanout, compression="deflate")
        subscribers = await open_many(server, tenant.token, fanout, n, compression="deflate")
        try:
            await asyncio.sleep(SETTLE_S)
            rss = server.rss_kib()
            # Use the connections once, as a dashboard would, then measure again.
            await fanout_round(server, tenant, fanout, n)
            await asyncio.sleep(SETTLE_S)
            rss = max(rss, server.rss_kib())
        finally:
            await close_all(subscribers)
    flag = "--ws-per-message-deflate false (Procfile)" if not deflate else "default (true)"
    return DeflateResult(flag, n, sum(s.deflate for s in subscribers), base, rss)


async def main(quick: bool) -> int:
    banner("WebSocket memory and fan-out (bench/ws_memory.py" + (" --quick)" if quick else ")"))
    steps, rounds, deflate_n = ([20, 50], 2, 20) if quick else ([200, 500, 1000], 3, 200)
    deadline = time.monotonic() + (30 if quick else 80)
    with workdir("ws") as tmp:
        db_url = sqlite_url(tmp)
        seeded = seed_demo(db_url)
        async with gateway(db_url, Path(tmp), name="scaling") as server:
            async with http_client() as client:
                tenant = await prepare_tenant(client, server.url, seeded)
            base, results, closed = await scaling(server, tenant, steps, rounds, deadline)
            problems = server.log_problems()
        deflate_results = [
            await deflate_case(db_url, Path(tmp), seeded, deflate=flag, n=deflate_n) for flag in (False, True)
        ]

    print()
    rows = []
    for step in results:
        ok = all(r.received == r.subscribers for r in step.rounds)
        rows.append(
            [
                step.connections,
                mib(step.rss_kib),
                f"{step.per_connection_kib:.0f}",
                f"{median([r.mutation_ms for r in step.rounds]):.0f}",
                f"{median([r.first_ms for r in step.rounds]):.0f}",
                f"{median([r.p50_ms for r in step.rounds]):.0f}",
                f"{median([r.p100_ms for r in step.rounds]):.0f}",
                f"{median([r.server_cpu_ms for r in step.rounds]) / step.connections:.2f}",
                f"{median([r.client_cpu_ms for r in step.rounds]):.0f}",
                "yes" if ok else f"no ({min(r.received for r in step.rounds)})",
                mib(step.rss_after_kib),
            ]
        )
    print(
        table(
            [
                "connections",
                "RSS MiB",
                "KiB/conn",
                "buy ms",
                "first ms",
                "p50 ms",
                "p100 ms",
                "server CPU ms/sub/order",
                "client CPU ms/order",
                "all got it",
                "RSS after MiB",
            ],
            rows,
        )
    )
    print(f"\nfan-out latency: from sending buyLicenses to each SUCCEEDED event; median of {rounds} orders per step.")
    print(f"RSS: {mib(base)} MiB baseline (warmed up), {mib(closed)} MiB after closing every connection.")
    print()
    print(
        table(
            ["uvicorn flag", "connections", "deflate negotiated", "baseline MiB", "RSS MiB", "KiB/conn"],
            [
                [
                    d.server_flag,
                    d.connections,
                    d.negotiated,
                    mib(d.base_kib),
                    mib(d.rss_kib),
                    f"{d.per_connection_kib:.0f}",
                ]
                for d in deflate_results
            ],
        )
    )
    if problems:
        print(f"\nserver log: {len(problems)} problem lines, first: {problems[0]}")
    complete = all(r.received == r.subscribers for s in results for r in s.rounds)
    footer()
    return 0 if complete and results and not problems else 1


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few dozen connections, for a smoke test")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_parse().quick)))

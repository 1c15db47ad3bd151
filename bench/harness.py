"""What every figure of ``bench/run.py`` stands on: servers started as the
Procfile starts the gateway, a fresh SQLite file per server group, seeding,
GraphQL over httpx, process CPU and memory from /proc, percentiles, Markdown
tables and the list of checks that decides the exit status.

Every wait here is bounded in time and every loop in count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "BENCH",
    "ROOT",
    "SERVER_ENV",
    "Checks",
    "Config",
    "GraphQLFailure",
    "Server",
    "Target",
    "Tenant",
    "cpu_seconds",
    "fmt",
    "gql",
    "graphql_body",
    "http_client",
    "median",
    "percentile",
    "post_graphql",
    "prepare_tenant",
    "procfile_argv",
    "raise_fd_limit",
    "read_only",
    "rss_kib",
    "seed_demo",
    "serve",
    "server_env",
    "table",
]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable

ADD_CARD = """
mutation($c: ID!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa", makePrimary: true}) {
    paymentMethod { id } userErrors { code message }
  }
}"""

PRODUCTS = "query($c: ID!) { products(actingCustomer: $c) { id totalLicenses } }"

# What the benchmark's servers run with, on top of the caller's environment.
SERVER_ENV = {
    "RATE_LIMIT": "off",
    # The fan-out's thousands of subscribers share one token.
    "MAX_CONNECTIONS_PER_TOKEN": "0",
    "SANDBOX_CONFIRM_DELAY_MS": "0",
    "BROADCAST_URL": "memory://",
    "PAYMENT_PROVIDER": "sandbox",
    "LOG_LEVEL": "WARNING",
}


# --- what a run is asked to do ------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool
    workdir: Path
    seconds: int  # one measured wrk run
    warmup_seconds: int
    rounds: int  # measured runs per server (read) / orders per subscriber count (fan-out)
    read_connections: int
    buy_connections: int
    subscribers: tuple[int, ...]
    client_processes: int
    profiler: Any  # profiler.Profiler | None (not imported here: it imports this module)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, as measured: ``met`` is informational unless --require-targets."""

    figure: str
    target: str
    measured: str
    met: bool


# --- checks -------------------------------------------------------------------


@dataclass
class Checks:
    """Each check a figure makes, passed or failed; any failure fails the run."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        if not ok:
            print(f"CHECK FAILED: {name}: {detail}", flush=True)
        return ok

    @property
    def failed(self) -> list[tuple[str, bool, str]]:
        return [r for r in self.results if not r[1]]

    def markdown(self) -> str:
        return table(["check", "result", "detail"], [[n, "ok" if ok else "**FAILED**", d] for n, ok, d in self.results])


# --- numbers and tables -------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # NaN: nothing was measured


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table, padded so the output reads as is and pastes into docs/."""
    text_rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in text_rows]
    return "\n".join(lines)


# --- processes ----------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, its threads included (10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the command name: utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (children inherit it); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def procfile_argv(app: str, port: int) -> list[str]:
    """The Procfile's ``web`` command for ``app`` on ``127.0.0.1:port``, one worker.

    Read from the Procfile itself, so a flag added there (``--ws-max-size``,
    ``--no-access-log``, …) is benchmarked too. ``--proxy-headers`` and the
    like are kept as they are.
    """
    line = next(
        (ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("web:")),
        None,
    )
    if line is None:
        raise RuntimeError("the Procfile has no web: line")
    text = line.removeprefix("web:").strip()
    text = re.sub(r"\$\{PORT:-\d+\}", str(port), text)
    text = re.sub(r"\$\{WEB_CONCURRENCY:-\d+\}", "1", text)
    argv = shlex.split(text)
    if argv[:2] != ["uvicorn", "gateway.asgi:app"]:
        raise RuntimeError(f"the Procfile's web command is not `uvicorn gateway.asgi:app …`: {text}")
    uvicorn = Path(PYTHON).parent / "uvicorn"
    argv[:2] = [str(uvicorn) if uvicorn.exists() else "uvicorn", app]
    if "--host" in argv:
        argv[argv.index("--host") + 1] = "127.0.0.1"  # loopback only
    if "--workers" not in argv:
        argv += ["--workers", "1"]
    return argv


def server_env(db_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SERVER_ENV, DATABASE_URL=f"sqlite+aiosqlite:///{db_path}")
    env.update(extra)
    return env


@dataclass
class Server:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def command(self) -> str:
        return shlex.join([Path(self.argv[0]).name, *self.argv[1:]])

    def log_problems(self) -> list[str]:
        """Lines of the server's log that say something went wrong."""
        text = self.log_path.read_text(errors="replace")
        marks = ("ERROR", "Traceback", "CRITICAL", "database is locked")
        return [line for line in text.splitlines() if any(m in line for m in marks)]


@contextlib.asynccontextmanager
async def serve(
    name: str, app: str, env: dict[str, str], workdir: Path, *, ready_path: str = "/readyz"
) -> AsyncIterator[Server]:
    """``app`` served as the Procfile serves the gateway; yielded once ``ready_path`` answers 200."""
    port = free_port()
    argv = procfile_argv(app, port)
    log_path = workdir / f"{name}.log"
    server = Server(name, argv, _spawn(argv, env, log_path), port, log_path)
    process = server.process
    try:
        await _wait_ready(server, ready_path, timeout_s=30)
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's clean shutdown
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 5)


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def _wait_ready(server: Server, path: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with http_client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                tail = server.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{server.name} exited ({server.process.returncode}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(server.url + path)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{server.name} not ready after {timeout_s}s; see {server.log_path}")


# --- the database -------------------------------------------------------------


def seed_demo(db_path: Path) -> dict[str, Any]:
    """``python -m cli seed-demo --json`` on a fresh file: a partner, two customers, tokens."""
    out = subprocess.run(
        [PYTHON, "-m", "cli", "seed-demo", "--json"],
        cwd=ROOT,
        env=server_env(db_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seeded: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return seeded


def read_only(db_path: Path) -> sqlite3.Connection:
    """The SQLite file as the server left it, read directly (WAL: committed writes are seen)."""
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)


# --- GraphQL over HTTP --------------------------------------------------------


class GraphQLFailure(RuntimeError):
    pass


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """httpx that never goes through a proxy: loopback only."""
    kwargs.setdefault("timeout", 30)
    return httpx.AsyncClient(trust_env=False, **kwargs)


def graphql_body(query: str, variables: dict[str, Any]) -> bytes:
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":")).encode()


async def post_graphql(client: httpx.AsyncClient, url: str, token: str, body: bytes) -> httpx.Response:
    return await client.post(
        url + "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


async def gql(
    client: httpx.AsyncClient, url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST one operation; raise on a transport or GraphQL error or userErrors, return ``data``."""
    response = await post_graphql(client, url, token, graphql_body(query, variables or {}))
    if response.status_code != 200:
        raise GraphQLFailure(f"HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise GraphQLFailure(json.dumps(body["errors"])[:300])
    data: dict[str, Any] = body["data"]
    for payload in data.values():
        if isinstance(payload, dict) and payload.get("userErrors"):
            raise GraphQLFailure(json.dumps(payload["userErrors"])[:300])
    return data


@dataclass(frozen=True)
class Tenant:
    """A seeded customer whose primary card is ``pm_card_visa``."""

    customer_id: str
    product_id: str
    token: str
    total_licenses: int


async def prepare_tenant(url: str, seeded: dict[str, Any]) -> Tenant:
    token = seeded["tokens"]["PARTNER_OWNER"]
    customer_id = seeded["customers"][0]["id"]
    async with http_client() as client:
        await gql(client, url, token, ADD_CARD, {"c": customer_id})
        products = (await gql(client, url, token, PRODUCTS, {"c": customer_id}))["products"]
    return Tenant(customer_id, products[0]["id"], token, products[0]["totalLicenses"])

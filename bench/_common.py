"""Shared plumbing for the benchmarks: a real gateway subprocess, seeding,
GraphQL over httpx, process memory from /proc, percentiles and tables.

Every wait here is bounded in time; every loop is bounded in count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

BUY = """
mutation($c: ID!, $p: ID!, $q: Int!, $k: String) {
  buyLicenses(actingCustomer: $c, input: {productId: $p, quantity: $q, idempotencyKey: $k}) {
    order { id status } userErrors { code message }
  }
}"""

ADD_CARD = """
mutation($c: ID!) {
  addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa", makePrimary: true}) {
    paymentMethod { id } userErrors { code message }
  }
}"""

PRODUCTS = """
query($c: ID!) {
  products(actingCustomer: $c) { id totalLicenses plan { name price(interval: MONTHLY) { amount } } }
}"""


def machine() -> dict[str, str]:
    return {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) of ``pid`` in KiB, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def rss_kib(pid: int) -> int:
    return proc_status(pid)["VmRSS"]


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table, so the output can be pasted into docs/ as is."""
    text_rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in text_rows]
    return "\n".join(lines)


def gateway_env(db_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        RATE_LIMIT="off",
        SANDBOX_CONFIRM_DELAY_MS="0",
        BROADCAST_URL="memory://",
        PAYMENT_PROVIDER="sandbox",
    )
    env.update(extra)
    return env


def seed_demo(db_url: str) -> dict[str, Any]:
    """``python -m cli seed-demo --json``: a new partner, its customers and tokens."""
    out = subprocess.run(
        [PYTHON, "-m", "cli", "seed-demo", "--json"],
        cwd=ROOT,
        env=gateway_env(db_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tenant: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return tenant


@dataclass
class Gateway:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def log_problems(self) -> list[str]:
        """ERROR / Traceback / 'locked' lines the server logged."""
        text = self.log_path.read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if " ERROR " in line or "Traceback" in line or "locked" in line.lower() or "CRITICAL" in line
        ]


@contextlib.asynccontextmanager
async def gateway(
    db_url: str,
    workdir: Path,
    *,
    deflate: bool = False,
    extra_env: dict[str, str] | None = None,
    name: str = "gateway",
    app: str = "gateway.asgi:app",
) -> AsyncIterator[Gateway]:
    """``python -m uvicorn gateway.asgi:app`` on a free loopback port, ready when yielded."""
    port = free_port()
    cmd = [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    profile = os.environ.get("BENCH_PROFILE_DIR")
    if profile:
        # Where the server's time goes (cProfile slows it down: use for finding, not for numbers).
        os.makedirs(profile, exist_ok=True)
        cmd[1:1] = ["-m", "cProfile", "-o", str(Path(profile) / f"{name}-{port}.prof")]
    if not deflate:
        cmd += ["--ws-per-message-deflate", "false"]
    log_path = workdir / f"{name}-{port}.log"
    process = _spawn(cmd, gateway_env(db_url, **(extra_env or {})), log_path)
    server = Gateway(port=port, process=process, log_path=log_path)
    try:
        await _wait_ready(server, timeout_s=30)
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly (and a profile gets written)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 5)


def _spawn(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def _wait_ready(server: Gateway, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"gateway exited ({server.process.returncode}); see {server.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(server.url + "/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"gateway not ready after {timeout_s}s; see {server.log_path}")


def workdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=f"pbg-bench-{prefix}-")


def sqlite_url(directory: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(directory) / 'gateway.sqlite3'}"


class GraphQLFailure(RuntimeError):
    pass


async def gql(
    client: httpx.AsyncClient, url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a GraphQL request; raise on transport or GraphQL errors, return ``data``."""
    response = await client.post(
        url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise GraphQLFailure(f"HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise GraphQLFailure(json.dumps(body["errors"])[:300])
    data: dict[str, Any] = body["data"]
    return data


def user_errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``userErrors`` entry of a mutation payload."""
    found: list[dict[str, Any]] = []
    for payload in data.values():
        if isinstance(payload, dict):
            found.extend(payload.get("userErrors") or [])
    return found


@dataclass
class Tenant:
    customer_id: str
    product_id: str
    token: str
    total_licenses: int
    payment_method_id: str | None = None


async def prepare_tenant(client: httpx.AsyncClient, url: str, seeded: dict[str, Any], customer: int = 0) -> Tenant:
    """The seeded customer's product, with a pm_card_visa card made primary."""
    token = seeded["tokens"]["PARTNER_OWNER"]
    customer_id = seeded["customers"][customer]["id"]
    products = (await gql(client, url, token, PRODUCTS, {"c": customer_id}))["products"]
    added = await gql(client, url, token, ADD_CARD, {"c": customer_id})
    if user_errors(added):
        raise GraphQLFailure(f"addPaymentMethod: {user_errors(added)}")
    return Tenant(
        customer_id=customer_id,
        product_id=products[0]["id"],
        token=token,
        total_licenses=products[0]["totalLicenses"],
        payment_method_id=added["addPaymentMethod"]["paymentMethod"]["id"],
    )


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that never goes through a proxy: loopback only."""
    kwargs.setdefault("timeout", 30)
    return httpx.AsyncClient(trust_env=False, **kwargs)


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every number here."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def banner(title: str) -> None:
    info = machine()
    print(f"# {title}")
    print(f"nproc={info['nproc']} python={info['python']} date={info['date']} ({info['platform']})")
    print(f"load average at start: {load_average()}")
    print()


def footer() -> None:
    print(f"\nload average at end: {load_average()}")


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK

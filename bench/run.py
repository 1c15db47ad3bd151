"""Every figure of issue 8, in one run, printed as Markdown.

    python bench/run.py                  # the full run (about 5 minutes on 2 cores)
    python bench/run.py --quick          # a smoke run of about 1.5 minutes; numbers meaningless
    python bench/run.py --profile DIR    # also py-spy the gateway (read, purchases, fan-out) into DIR

Figures (each against a real gateway started as the Procfile starts it, on a
fresh SQLite file, RATE_LIMIT=off, MAX_CONNECTIONS_PER_TOKEN=0, SANDBOX_CONFIRM_DELAY_MS=0, memory://
broadcast, the sandbox provider, LOG_LEVEL=WARNING):

1. the dashboard read against a bare Starlette floor and a plain Strawberry app (wrk);
2. purchases from 16 concurrent clients, then every order checked in the SQLite file (wrk);
3. one purchase fanned out to N subscribers of one customer (client processes);
4. three reads at 10 and 1,000 rows: SQL statements, req/s, latency, CPU per request (wrk).

Exit status: 0 when every check passed (with --require-targets: and every
target of the issue was met), 1 otherwise, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from fanout import fanout_figure
from harness import SERVER_ENV, Checks, Config, Target, procfile_argv, raise_fd_limit, table
from profiler import Profiler, py_spy, summarize
from purchases import purchases_figure
from read import read_figure
from rows import SIZES, rows_figure
from wrkload import wrk_version

LIBRARIES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "websockets",
    "SQLAlchemy",
    "sqlmodel",
    "aiosqlite",
    "orjson",
    "broadcaster",
    "httpx",
)
FIGURES = ("read", "purchases", "fanout", "rows")
FD_LIMIT = 20000


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    except OSError:
        return "?"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as info:
            kib = int(next(ln for ln in info if ln.startswith("MemTotal")).split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        return "?"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _py_spy_version() -> str:
    out = subprocess.run([py_spy(), "--version"], capture_output=True, text=True, timeout=10, check=False)
    return out.stdout.strip() or out.stderr.strip()


async def machine_facts(profiling: bool, fd_limit: int) -> str:
    py_spy_version = await asyncio.to_thread(_py_spy_version) if profiling else "not used"
    rows = [
        ["date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")],
        ["nproc", str(os.cpu_count())],
        ["CPU", _cpu_model()],
        ["memory", _memory()],
        ["OS", f"{platform.system()} {platform.release()} {platform.machine()}, glibc {platform.libc_ver()[1]}"],
        ["Python", f"{platform.python_version()} ({sys.executable})"],
        ["libraries", ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)],
        ["load generator", await wrk_version()],
        ["profiler", py_spy_version],
        ["open files limit (soft)", str(fd_limit)],
        ["load average at start (1/5/15 min)", _load()],
    ]
    return table(["", ""], rows)


def servers_section(commands: list[str]) -> str:
    env = " ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
    lines = [
        "Every server runs the Procfile's `web` command (read from the Procfile), on 127.0.0.1 with one worker:",
        "",
        *(f"    {c}" for c in commands),
        "",
        f"with `{env}` and `DATABASE_URL=sqlite+aiosqlite:///<fresh file>`; the floor and plain Strawberry "
        "get `PYTHONPATH=bench`.",
    ]
    argv = procfile_argv("gateway.asgi:app", 0)
    if "--no-access-log" in argv:
        lines.append("Access log: off (the Procfile passes `--no-access-log`).")
    else:
        lines.append(
            "Access log: the Procfile does not pass `--no-access-log`; at LOG_LEVEL=WARNING the gateway sets "
            "uvicorn's access logger to WARNING, so no access line is written (uvicorn still makes the call "
            "per request). The floor and plain Strawberry set the same level."
        )
    return "\n".join(lines)


async def _figure(
    title: str, budget_s: float, checks: Checks, work: Callable[[], Awaitable[tuple[str, list[Target]]]]
) -> list[Target]:
    """Run one figure within its time budget and print it; a failure is a failed check, not the end of the run."""
    print(f"\n## {title}\n", flush=True)
    started = time.monotonic()
    try:
        async with asyncio.timeout(budget_s):
            text, targets = await work()
    except TimeoutError:
        checks.check(f"{title}: finished within {budget_s:.0f} s", False, "timed out")
        return []
    except Exception as exc:
        traceback.print_exc()
        checks.check(f"{title}: ran to the end", False, repr(exc)[:300])
        return []
    print(text)
    print(f"\n({time.monotonic() - started:.0f} s)", flush=True)
    return targets


async def main(args: argparse.Namespace) -> int:
    quick = args.quick
    with tempfile.TemporaryDirectory(prefix="pbg-bench-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        config = Config(
            quick=quick,
            workdir=workdir,
            seconds=args.seconds or (2 if quick else 10),
            warmup_seconds=1 if quick else 3,
            rounds=2 if quick else 3,
            read_connections=32,
            buy_connections=16,
            subscribers=tuple(args.subscribers or ((200, 1000) if quick else (1000, 5000))),
            client_processes=args.clients,
            profiler=Profiler(args.profile) if args.profile else None,
        )
        print(
            "# Partner Billing Gateway: issue 8 benchmark"
            + (" (--quick: a smoke run, numbers meaningless)" if quick else "")
        )
        print()
        # 5,000 subscribers: as many sockets on each side, and the servers inherit the limit.
        fd_limit = raise_fd_limit(FD_LIMIT)
        print(await machine_facts(config.profiler is not None, fd_limit))
        checks = Checks()
        targets: list[Target] = []
        commands: list[str] = []
        selected = args.only or list(FIGURES)
        per_run = config.seconds + 5
        profiled = 2 * per_run + 20 if config.profiler is not None else 0  # two sampled passes per figure
        if "read" in selected:

            async def read() -> tuple[str, list[Target]]:
                text, found, served = await read_figure(config, checks)
                commands.extend(served)
                return text, found

            budget: float = 60 + 3 * (config.warmup_seconds + 5) + per_run * 3 * config.rounds + profiled
            targets += await _figure("1. Dashboard read: gateway vs floor vs plain Strawberry", budget, checks, read)
        if "purchases" in selected:
            budget = 120 + config.warmup_seconds + per_run + profiled
            targets += await _figure(
                "2. Purchases: buyLicenses from 16 clients", budget, checks, lambda: purchases_figure(config, checks)
            )
        if "fanout" in selected:
            orders = config.rounds + 2 + (6 if config.profiler is not None else 0)  # + warm-up, unmeasured
            budget = sum((90 + n * 0.06 + 35 * orders for n in config.subscribers), 0.0)
            targets += await _figure(
                "3. Fan-out: one order to N subscribers of one customer",
                budget,
                checks,
                lambda: fanout_figure(config, checks),
            )
        if "rows" in selected:
            # Per size: seed, grow and count in a child, start a gateway; per read a warm-up and a run.
            budget = 60 + len(SIZES) * (60 + 3 * (config.warmup_seconds + config.seconds + 15))
            targets += await _figure(
                "4. Rows: three reads at 10 and 1,000 rows", budget, checks, lambda: rows_figure(config, checks)
            )
        if commands:
            print("\n## How the servers ran\n")
            print(servers_section(commands))
        if config.profiler is not None and config.profiler.written:
            print("\n## Profile (py-spy, gateway process)\n")
            for name, svg, raw in config.profiler.written:
                print(f"### {name}\n\nflamegraph: `{svg}`; collapsed stacks: `{raw}`\n")
                print(summarize(raw) if raw.exists() else f"({raw} was not written)")
                print()
        print("\n## Targets of issue 8\n")
        if targets:
            print(
                table(
                    ["figure", "target", "measured", "met"],
                    [[t.figure, t.target, t.measured, "yes" if t.met else "no"] for t in targets],
                )
            )
        else:
            print("(none: the chosen figures measure no target of the issue)")
        print("\n## Checks\n")
        print(checks.markdown())
        print(f"\nload average at end (1/5/15 min): {_load()}")
        failed = bool(checks.failed) or (args.require_targets and not all(t.met for t in targets))
        if args.keep:
            print(f"\nfiles kept in {workdir}")
        print(
            f"\n{'FAILED' if failed else 'OK'}: {len(checks.failed)} of {len(checks.results)} checks failed"
            + (f"; {sum(not t.met for t in targets)} of {len(targets)} targets not met" if targets else "")
        )
        return 1 if failed else 0


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("subscriber counts must be at least 1")
    return counts


def _figures(text: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in FIGURES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"figures are {', '.join(FIGURES)}; got {text!r}")
    return chosen


def _directory(text: str) -> Path:
    return Path(text).resolve()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs and few subscribers: a smoke test")
    parser.add_argument(
        "--profile",
        type=_directory,
        metavar="DIR",
        help="py-spy the gateway during extra (unreported) runs of each figure; files in DIR",
    )
    parser.add_argument("--only", type=_figures, metavar="FIGURES", help=f"some of {','.join(FIGURES)}")
    parser.add_argument(
        "--seconds", type=int, metavar="S", help="length of each measured wrk run (default 10; 2 quick)"
    )
    parser.add_argument("--subscribers", type=_counts, metavar="N,N", help="fan-out sizes (default 1000,5000)")
    parser.add_argument("--clients", type=int, default=4, metavar="P", help="client processes for fan-out (4)")
    parser.add_argument("--require-targets", action="store_true", help="exit 1 when a target of the issue is not met")
    parser.add_argument("--keep", metavar="DIR", help="keep databases, server logs and wrk scripts in DIR")
    args = parser.parse_args(argv)
    if args.seconds is not None and args.seconds < 1:
        parser.error("--seconds must be at least 1")
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))

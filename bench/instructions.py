"""CPU instructions per dashboard read, counted by callgrind: a figure that does
not drift with a shared machine's speed, for comparing two versions of the code.

    python bench/instructions.py                 # instructions per read (about 2 minutes)
    python bench/instructions.py --reads 100,300 # fewer reads, sooner, noisier

The dashboard read of figure 1 (``read.DASHBOARD``) runs in process through
the ASGI app (no uvicorn, no sockets, no wrk), 32 at a time, on a fresh
seeded SQLite file with one card, under ``valgrind --tool=callgrind``, once
for each of two numbers of reads; the difference of the two totals divided by
the difference of reads is the cost of one read without the process's start.
Every answer is checked to be the first one, byte for byte. Callgrind counts
user-space instructions of every thread (aiosqlite's included), not system
calls or waiting: it says whether the gateway's own work grew or shrank, not
how fast it serves (figure 1 says that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from harness import PYTHON, ROOT, SERVER_ENV, seed_demo, server_env
from read import DASHBOARD

ADD_CARD = (
    'mutation($c: ID!) { addPaymentMethod(actingCustomer: $c, input: {paymentMethodToken: "pm_card_visa"}) '
    "{ userErrors { code } } }"
)
CONCURRENCY = 32


def _scope(token: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _post(app: Any, token: str, query: str, variables: dict[str, Any]) -> bytes:
    body = json.dumps({"query": query, "variables": variables}).encode()
    answer: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            answer.append(message["body"])

    await app(_scope(token, body), receive, send)
    return b"".join(answer)


async def _child(reads: int, seeded: dict[str, Any], add_card: bool) -> None:
    """In the measured process: start the app, read ``reads`` times, stop."""
    from gateway.app import create_app

    app = create_app()
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, startup.get, sent.put)
    )
    if (await sent.get())["type"] != "lifespan.startup.complete":
        raise SystemExit("the gateway did not start")
    token, customer = seeded["tokens"]["PARTNER_OWNER"], seeded["customers"][0]["id"]
    if add_card:
        added = await _post(app, token, ADD_CARD, {"c": customer})
        if b'"userErrors":[]' not in added:
            raise SystemExit(f"adding the card failed: {added!r}")
    first = await _post(app, token, DASHBOARD, {"c": customer})
    if b'"errors"' in first or b'"paymentMethods":[{' not in first:
        raise SystemExit(f"the read failed: {first!r}")
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one() -> bytes:
        async with slots:
            return await _post(app, token, DASHBOARD, {"c": customer})

    answers = await asyncio.gather(*(one() for _ in range(reads)))
    if any(answer != first for answer in answers):
        raise SystemExit("an answer differed from the first")
    await startup.put({"type": "lifespan.shutdown"})
    await sent.get()
    await lifespan


def _instructions(counts: tuple[int, ...], db: Path, seeded: Path, workdir: Path) -> dict[int, int]:
    """Each number of reads under callgrind, the runs side by side (one core each)."""
    runs = {}
    for reads in counts:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={workdir / f'callgrind-{reads}.out'}",
            PYTHON,
            __file__,
            "--child",
            str(reads),
            "--seeded",
            str(seeded),
        ]
        runs[reads] = subprocess.Popen(
            command, cwd=ROOT, env=server_env(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    totals = {}
    for reads, run in runs.items():
        _, stderr = run.communicate(timeout=1800)
        found = re.search(r"Collected : (\d+)", stderr)
        if run.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run of {reads} reads failed:\n{stderr[-2000:]}")
        totals[reads] = int(found.group(1))
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", default="200,600", help="the two numbers of reads (default 200,600)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seeded", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        # This checkout's code, whichever checkout the venv was installed from.
        sys.path.insert(0, str(ROOT))
        seeded_path: Path = args.seeded
        card = seeded_path.with_suffix(".card")
        add_card = not card.exists()
        # asyncio's own loop: uvloop comes only with uvicorn's extra, and the
        # figure compares versions of the gateway, not event loops.
        asyncio.run(_child(args.child, json.loads(seeded_path.read_text()), add_card))
        card.touch()
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    few, many = sorted(int(n) for n in args.reads.split(","))
    if not 0 < few < many:
        print("--reads needs two different positive numbers", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pbg-instructions-") as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.sqlite3"
        seeded = workdir / "seeded.json"
        seeded.write_text(json.dumps(seed_demo(db)))
        # The card is added by the first run, before either is counted.
        first = [PYTHON, __file__, "--child", "1", "--seeded", str(seeded)]
        subprocess.run(first, cwd=ROOT, env=server_env(db), check=True, timeout=300)
        counts = _instructions((few, many), db, seeded, workdir)
    per_read = (counts[many] - counts[few]) / (many - few)
    print(f"environment: {', '.join(f'{k}={v}' for k, v in SERVER_ENV.items())}")
    print(f"callgrind totals: {few} reads {counts[few]:,}; {many} reads {counts[many]:,}")
    print(f"instructions per dashboard read: {per_read:,.0f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

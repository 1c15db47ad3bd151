"""Running ``examples/automation`` as a partner runs it: ``python -m bulk_orders``
in its own folder, as a separate process, token and URL in the environment."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLE_DIR", "HEADER", "ScriptRun", "run_script", "write_csv"]

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "automation"
HEADER = ("customer_id", "product_id", "plan_id", "billing_interval", "quantity")
RUN_TIMEOUT_S = 90.0  # a whole run on 2 busy cores; a hang fails the test instead


@dataclass(frozen=True)
class ScriptRun:
    code: int
    stdout: str
    stderr: str

    def results(self) -> list[dict[str, Any]]:
        """The ``--json`` summary."""
        parsed: list[dict[str, Any]] = json.loads(self.stdout)
        return parsed

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def write_csv(path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


async def run_script(
    csv_path: Path, *args: str, token: str | None, url: str, env: Mapping[str, str] | None = None
) -> ScriptRun:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_BILLING_")}
    environment["PARTNER_BILLING_URL"] = url
    if token is not None:
        environment["PARTNER_BILLING_TOKEN"] = token
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulk_orders",
        str(csv_path),
        "--settle-timeout",
        "30",
        *args,
        cwd=EXAMPLE_DIR,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        raise AssertionError(f"bulk_orders still running after {RUN_TIMEOUT_S} s:\n{stderr.decode()}") from None
    assert process.returncode is not None
    return ScriptRun(process.returncode, stdout.decode(), stderr.decode())

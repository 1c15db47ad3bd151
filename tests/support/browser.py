"""Browser tests from pytest: a Node script under ``tests/browser/`` drives
Debian's Chromium with playwright-core (``tests/browser/lib/chromium.mjs``)
against a gateway the test serves, and reports back one JSON line.

``scripts/browser-setup`` installs Chromium and playwright-core; without them
the tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.graphiql.assets import missing_assets
from tests.support.services import unavailable

__all__ = ["BROWSER_DIR", "CHROMIUM", "ScenarioReport", "require_browser", "require_graphiql_assets", "run_scenario"]

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Chromium's cold start on 2 shared cores plus the scenario's own bounded waits.
SCENARIO_TIMEOUT_S = 120.0


def require_browser() -> str:
    """The ``node`` executable, once Chromium and playwright-core are there too."""
    node = shutil.which("node")
    problems = []
    if node is None:
        problems.append("node is not on PATH")
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"{CHROMIUM} is missing")
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        problems.append(f"playwright-core is not installed in {BROWSER_DIR}")
    if problems or node is None:
        unavailable(
            f"browser tests need Chromium, Node and playwright-core: {'; '.join(problems)} (run scripts/browser-setup)"
        )
    return node


def require_graphiql_assets() -> None:
    """GraphiQL's pinned files, installed by ``scripts/setup``."""
    missing = missing_assets()
    if missing:
        names = ", ".join(asset.served_path for asset in missing)
        unavailable(f"GraphiQL's files are not installed ({names}): run scripts/setup (it needs npm)")


@dataclass
class ScenarioReport:
    """What ``scenario()`` of ``lib/chromium.mjs`` printed."""

    ok: bool
    steps: list[str]
    result: Any
    error: str | None
    violations: dict[str, list[str]]
    screenshot: str | None
    stderr: str = field(repr=False, default="")

    def explain(self) -> str:
        lines = [f"browser scenario failed after steps {self.steps}: {self.error}"]
        lines += [f"  {kind}: {items}" for kind, items in self.violations.items() if items]
        if self.screenshot:
            lines.append(f"  screenshot: {self.screenshot}")
        if self.stderr.strip():
            lines.append(f"  node stderr: {self.stderr.strip()[-2000:]}")
        return "\n".join(lines)

    def passed(self) -> Any:
        """The scenario's result, failing the test with the whole report if it did not pass."""
        if not self.ok:
            pytest.fail(self.explain(), pytrace=False)
        return self.result


async def run_scenario(
    script: str, scenario_input: Mapping[str, Any], *, timeout: float = SCENARIO_TIMEOUT_S
) -> ScenarioReport:
    """Run ``tests/browser/<script>`` with ``scenario_input`` as its JSON
    argument, without blocking this event loop (the gateway may be serving in
    it), and parse its report."""
    node = require_browser()
    process = await asyncio.create_subprocess_exec(
        node,
        str(BROWSER_DIR / script),
        json.dumps(dict(scenario_input)),
        cwd=BROWSER_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        pytest.fail(f"browser scenario {script} did not finish within {timeout:.0f} s", pytrace=False)
    out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(f"browser scenario {script} printed no report (exit {process.returncode}):\n{out}\n{err}")
    return ScenarioReport(
        ok=bool(report["ok"]),
        steps=report["steps"],
        result=report["result"],
        error=report["error"],
        violations=report["violations"],
        screenshot=report["screenshot"],
        stderr=err,
    )

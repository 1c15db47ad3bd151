"""Browser tests from pytest: a Node script under ``tests/browser/`` drives
Debian's Chromium with playwright-core (``tests/browser/lib/chromium.mjs``)
against a gateway the test serves, and reports back one JSON line.

A scenario can ask the test to act in the middle of it (``callTest(name,
args)`` in the script): ``run_scenario``'s ``hooks`` answer by name, in the
test's own process, so a hook can reach the gateway's database as any test
does (move a period into the past, run the renewal pass) while the page stays
open.

``scripts/browser-setup`` installs Chromium and playwright-core; without them
the tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.graphiql.assets import missing_assets
from tests.support.services import unavailable

__all__ = [
    "BROWSER_DIR",
    "CHROMIUM",
    "Hook",
    "ScenarioReport",
    "require_browser",
    "require_graphiql_assets",
    "run_scenario",
]

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Chromium's cold start on 2 shared cores plus the scenario's own bounded waits.
SCENARIO_TIMEOUT_S = 120.0
# The report is one line, and may be long.
_LINE_LIMIT = 16 * 1024 * 1024

# What a scenario's callTest(name, args) runs in the test's process: args in, a JSON value out.
Hook = Callable[[Any], Awaitable[Any]]


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
    script: str,
    scenario_input: Mapping[str, Any],
    *,
    timeout: float = SCENARIO_TIMEOUT_S,
    hooks: Mapping[str, Hook] | None = None,
) -> ScenarioReport:
    """Run ``tests/browser/<script>`` with ``scenario_input`` as its JSON
    argument, without blocking this event loop (the gateway may be serving in
    it), answer its ``callTest`` requests with ``hooks``, and parse its report."""
    node = require_browser()
    process = await asyncio.create_subprocess_exec(
        node,
        str(BROWSER_DIR / script),
        json.dumps(dict(scenario_input)),
        cwd=BROWSER_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=_LINE_LIMIT,
    )
    try:
        out, err, _ = await asyncio.wait_for(
            asyncio.gather(_converse(process, hooks or {}), _read_all(process.stderr), process.wait()), timeout
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        pytest.fail(f"browser scenario {script} did not finish within {timeout:.0f} s", pytrace=False)
    finally:
        assert process.stdin is not None
        process.stdin.close()
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


async def _converse(process: asyncio.subprocess.Process, hooks: Mapping[str, Hook]) -> str:
    """The script's stdout, less the calls it made, each answered on its stdin
    in turn (the script waits for each answer)."""
    assert process.stdout is not None and process.stdin is not None
    printed: list[str] = []
    while line := (await process.stdout.readline()).decode(errors="replace"):
        call = _call_in(line)
        if call is None:
            printed.append(line)
            continue
        answer: dict[str, Any] = {"call": call["call"]}
        hook = hooks.get(call["name"])
        if hook is None:
            answer["error"] = f"the test has no hook {call['name']!r} (it has {sorted(hooks)})"
        else:
            try:
                answer["result"] = await hook(call.get("args"))
            except Exception:  # the scenario fails with it, and the report shows it
                answer["error"] = traceback.format_exc()
        with contextlib.suppress(ConnectionError):  # the script died: its exit says why
            process.stdin.write((json.dumps(answer) + "\n").encode())
            await process.stdin.drain()
    return "".join(printed)


def _call_in(line: str) -> dict[str, Any] | None:
    """The callTest request a line of the script's stdout is, if it is one."""
    if not line.startswith('{"call":'):
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) and isinstance(message.get("name"), str) else None


async def _read_all(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await stream.read()).decode(errors="replace")

"""The example dashboard (``examples/dashboard``) for browser tests: built
from its source with its pinned packages (``scripts/browser-setup`` installs
them), and served as plain static files on an origin of its own, as a
partner would host it.

Each test session builds it afresh, so the test always drives the code in the
tree; the build type-checks it too (``npm run build`` runs ``tsc`` first).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import unavailable

__all__ = ["DASHBOARD_DIR", "build_dashboard", "require_dashboard_packages", "serve_static"]

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "examples" / "dashboard"
# tsc and Vite on 2 shared cores take about 5 s; a cold disk cache, more.
BUILD_TIMEOUT_S = 180.0


def require_dashboard_packages() -> str:
    """The ``npm`` executable, once the dashboard's packages are installed."""
    npm = shutil.which("npm")
    if npm is None:
        unavailable("the dashboard test needs npm (Node.js 20 or newer)")
    if not (DASHBOARD_DIR / "node_modules" / "vite" / "package.json").is_file():
        unavailable(f"the dashboard's packages are not installed in {DASHBOARD_DIR} (run scripts/browser-setup)")
    return npm


def build_dashboard(out_dir: Path) -> Path:
    """``npm run build`` into ``out_dir``, failing the test with the compiler's
    output when the dashboard does not build."""
    npm = require_dashboard_packages()
    env = {key: value for key, value in os.environ.items() if not key.startswith("VITE_")}
    # Set, even empty, so that no .env.local of a developer's changes the
    # build: Vite never overrides variables that are already set.
    env.update({"VITE_GATEWAY_URL": "", "VITE_STRIPE_PUBLISHABLE_KEY": ""})
    try:
        done = subprocess.run(
            [npm, "run", "build", "--", "--outDir", str(out_dir), "--emptyOutDir"],
            cwd=DASHBOARD_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the dashboard took more than {BUILD_TIMEOUT_S:.0f} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"the dashboard does not build:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return out_dir


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request on the test's stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def serve_static(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free port of 127.0.0.1 until the block ends;
    yields the origin, e.g. ``http://127.0.0.1:40123``."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-files", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

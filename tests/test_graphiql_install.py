"""``python -m gateway.graphiql.install``, run as ``scripts/setup`` runs it."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.graphiql import install
from gateway.graphiql.assets import ASSETS, STATIC_DIR, Asset
from tests.support.browser import require_graphiql_assets
from tests.support.services import unavailable

GRAPHIQL_JS = ASSETS[2]


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def run_installer(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gateway.graphiql.install", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    require_graphiql_assets()
    if shutil.which("npm") is None:
        unavailable("npm is not installed")
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    return copy


def test_a_changed_file_is_found_and_replaced(static_dir: Path) -> None:
    assert GRAPHIQL_JS.served_path.endswith("graphiql.min.js")
    target = static_dir / GRAPHIQL_JS.served_path
    target.write_bytes(target.read_bytes() + b"\n// changed")

    check = run_installer("--check", "--dir", str(static_dir))
    assert check.returncode == 1 and GRAPHIQL_JS.served_path in check.stderr

    repair = run_installer("--dir", str(static_dir))
    assert repair.returncode == 0, repair.stderr
    assert sha384(target.read_bytes()) == GRAPHIQL_JS.integrity
    assert run_installer("--check", "--dir", str(static_dir)).returncode == 0


def test_a_file_that_does_not_match_its_pinned_hash_is_not_installed(
    static_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a tampered package on the registry would look like."""
    (static_dir / GRAPHIQL_JS.served_path).unlink()
    wrong = Asset(GRAPHIQL_JS.package, GRAPHIQL_JS.path, "sha384-" + "A" * 64, GRAPHIQL_JS.kind)
    monkeypatch.setattr(install, "ASSETS", (wrong,))
    with pytest.raises(install.InstallError, match="integrity"):
        install.install(static_dir)
    assert not (static_dir / GRAPHIQL_JS.served_path).exists()

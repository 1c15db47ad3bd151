"""Every import is declared in pyproject.toml and public (scripts/check-imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "check-imports"


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    # This venv's Python: the check asks the installed environment who provides what.
    return subprocess.run([sys.executable, str(CHECK), str(root)], capture_output=True, text=True, timeout=120)


def test_the_project_imports_only_what_it_declares() -> None:
    result = run_check(REPO)
    assert result.returncode == 0, result.stderr
    assert "every import is declared and public" in result.stdout


def test_the_check_finds_undeclared_and_private_imports(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["httpx>=0.27", "broadcaster==0.3.1"]\n'
        '[project.optional-dependencies]\ntest = ["pytest>=8"]\nws = ["websockets>=13"]\n'
        '[tool.setuptools]\npackages = ["app", "app.sub"]\n'
    )
    (tmp_path / "app" / "sub").mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text(
        "import json\nimport httpx\nfrom app.sub import thing\n"
        "def optional() -> None:\n"
        "    import websockets  # an optional extra, imported only where it is needed: fine\n"
    )
    (tmp_path / "app" / "sub" / "thing.py").write_text(
        "def later() -> None:\n"
        "    import graphql  # provided by graphql-core, which only Strawberry declares\n"
        "from broadcaster._backends.memory import MemoryBackend\n"
        "import pytest  # a test tool in shipped code\n"
        "import no_such_module_anywhere\n"
        "import websockets  # an optional extra at import time: the module fails without it\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("import pytest\nimport httpx\n")  # fine: the test extra

    result = run_check(tmp_path)

    assert result.returncode == 1
    problems = result.stderr.splitlines()[:-1]
    assert problems == [
        "app/sub/thing.py:2: `graphql` comes from graphql-core, which is not in pyproject's dependencies",
        "app/sub/thing.py:3: `broadcaster._backends.memory` is a private module of broadcaster; use its public API",
        "app/sub/thing.py:4: `pytest` comes from pytest, which is not in pyproject's dependencies",
        "app/sub/thing.py:5: `no_such_module_anywhere` is provided by no installed distribution",
        "app/sub/thing.py:6: `websockets` comes from websockets, which is not in pyproject's dependencies",
    ], result.stderr

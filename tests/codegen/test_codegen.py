"""Client tooling over the committed ``schema.graphql``, run as a client
project runs it: GraphQL Code Generator types a TypeScript client's documents
(and ``tsc --strict`` accepts the result), and relay-compiler accepts Relay's
conventions (``@refetchable`` through ``Node`` and ``node(id:)``,
``@connection`` through ``PageInfo``). The pinned packages are in this
folder's package-lock.json; scripts/browser-setup installs them (npm ci)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import unavailable

HERE = Path(__file__).resolve().parent
BIN = HERE / "node_modules" / ".bin"
GENERATED = HERE / "generated"


@pytest.fixture
def tools() -> Path:
    if shutil.which("node") is None:
        unavailable("node is missing (Node.js 20 or newer)")
    if not (BIN / "graphql-codegen").exists() or not (BIN / "relay-compiler").exists():
        unavailable("tests/codegen's packages are not installed: run scripts/browser-setup (npm ci)")
    shutil.rmtree(GENERATED, ignore_errors=True)
    GENERATED.mkdir()
    return BIN


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=HERE, capture_output=True, text=True, timeout=300)


def test_graphql_codegen_types_a_clients_documents(tools: Path) -> None:
    generated = run(str(tools / "graphql-codegen"), "--config", "codegen.yml")
    assert generated.returncode == 0, generated.stdout + generated.stderr

    typescript = (GENERATED / "graphql.ts").read_text()
    assert "export type BuyLicensesMutation" in typescript
    assert "export type OrderFeedSubscription" in typescript
    compiled = run(str(tools / "tsc"), "--noEmit", "--strict", "--skipLibCheck", "generated/graphql.ts")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


def test_relay_compiler_accepts_the_schema(tools: Path) -> None:
    (GENERATED / "relay").mkdir()
    compiled = run(str(tools / "relay-compiler"))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr

    # The refetch query Relay wrote goes through Query.node(id:).
    refetch = (GENERATED / "relay" / "OrderRefetchQuery.graphql.ts").read_text()
    assert "node(id: $id)" in refetch, refetch

"""The first minutes: ``partner-billing demo`` (what ``scripts/demo`` runs) and
``seed-demo``'s text, run as a user runs them, their output pasted into
requests exactly as README.md says, and every option's ``--help``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cli.test_cli import REPO, cli, command
from tests.conftest import sqlite_settings
from tests.support.gateway import free_port, serve_gateway

START_TIMEOUT_S = 60.0  # a cold interpreter, migrations, and uvicorn on a busy 2-core machine
STOP_TIMEOUT_S = 15.0
VIEWER = "{ viewer { email role partner { id } } }"


@dataclass
class Printed:
    """What ``demo`` or ``seed-demo`` printed, and the two JSON documents to paste."""

    text: str
    headers: dict[str, str]
    variables: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Printed:
        lines = text.splitlines()
        after = {"Headers": None, "Variables": None}
        for index, line in enumerate(lines):
            for tab in after:
                if f"the {tab} tab" in line:
                    after[tab] = json.loads(lines[index + 1])
        assert after["Headers"] and after["Variables"], text
        return cls(text, after["Headers"], after["Variables"])

    @property
    def partner_id(self) -> str:
        match = re.search(r"^(?:Partner )?.*\((ptn_\w+)\)", self.text, flags=re.MULTILINE)
        assert match, self.text
        return match.group(1)


def readme_examples() -> list[tuple[str, set[str], dict[str, str] | None]]:
    """Each GraphQL example of README.md: the document, the variables it
    declares, and the Variables line printed under it (None when there is none)."""
    readme = (REPO / "README.md").read_text()
    examples = []
    for match in re.finditer(r"```graphql\n(.*?)```\n(?:\nVariables: `(\{.*?\})`)?", readme, flags=re.DOTALL):
        document, shown = match.group(1), match.group(2)
        declared = set(re.findall(r"\$(\w+)\s*:", document))
        examples.append((document, declared, json.loads(shown) if shown else None))
    return examples


async def graphql(http: httpx.AsyncClient, printed: Printed, document: str, **headers: str) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": document, "variables": printed.variables},
        headers={**printed.headers, **headers},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), (document, body)
    return body


def partners(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        count: int = conn.execute("SELECT count(*) FROM partners").fetchone()[0]
        return count


@contextlib.asynccontextmanager
async def running_demo(database: Path, port: int) -> AsyncIterator[Printed]:
    """``partner-billing demo --port N`` until it has printed and uvicorn says it is up."""
    process = await asyncio.create_subprocess_exec(
        *command(),
        "demo",
        "--port",
        str(port),
        cwd=database.parent,  # nothing lands in the repository's data/
        env=cli_environment(database),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout: list[str] = []
    stderr: list[str] = []
    drains: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not (stdout and stdout[-1].startswith("then run the examples")):
                line = await process.stdout.readline()
                assert line, f"demo exited: {await process.stderr.read()!r}"
                stdout.append(line.decode())
            # uvicorn's own signal that it is listening, on stderr (it binds
            # after "Application startup complete": waiting for that raced)
            while "Uvicorn running on" not in (stderr[-1] if stderr else ""):
                line = await process.stderr.readline()
                assert line, f"demo exited: {''.join(stderr)}"
                stderr.append(line.decode())
        # Keep reading both pipes so access logs never fill them.
        drains = [asyncio.create_task(_drain(stream)) for stream in (process.stdout, process.stderr)]
        yield Printed.parse("".join(stdout))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        for task in drains:
            task.cancel()
    assert "Traceback" not in "".join(stderr), "".join(stderr)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def cli_environment(database: Path) -> dict[str, str]:
    import os

    return {
        **{k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")},
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "PYTHONPATH": str(REPO),
        "RATE_LIMIT": "off",
        "LOG_LEVEL": "INFO",
    }


# -- README ----------------------------------------------------------------------


def test_every_readme_example_shows_the_variables_it_declares() -> None:
    examples = readme_examples()
    assert len(examples) >= 8
    for document, declared, shown in examples:
        if declared:
            assert shown is not None, f"no Variables line under:\n{document}"
            assert set(shown) == declared, document
        else:
            assert shown is None, document


# -- demo --------------------------------------------------------------------------


async def test_demo_prints_what_to_paste_and_the_readme_session_works_with_it(tmp_path: Path) -> None:
    database, port = tmp_path / "demo.sqlite3", free_port()

    async with (
        running_demo(database, port) as printed,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        assert f"GraphiQL at http://127.0.0.1:{port}/graphql" in printed.text
        assert "Demo MSP local" in printed.text and ", as before" not in printed.text
        assert set(printed.variables) == {"c", "p"}
        # $c is the first customer printed and $p a product listed under it
        customer = re.search(r"customer Acme Dental: (cst_\w+)\n    product \S+: (prd_\w+)", printed.text)
        assert customer and printed.variables == {"c": customer.group(1), "p": customer.group(2)}

        # The README's first session, in its order, pasted as printed: GraphQL
        # must accept the one Variables document for every example.
        ran = []
        for document, declared, _ in readme_examples():
            if document.lstrip().startswith("subscription") or not declared <= set(printed.variables):
                continue
            ran.append(await graphql(http, printed, document))
        assert len(ran) >= 7
        bought = next(body["data"]["buyLicenses"] for body in ran if "buyLicenses" in body["data"])
        assert bought["userErrors"] == [] and bought["order"]["status"] in {"PENDING", "PROCESSING", "SUCCEEDED"}


async def test_demo_reuses_its_partner_and_issues_fresh_tokens(tmp_path: Path) -> None:
    database, port = tmp_path / "demo.sqlite3", free_port()

    async with running_demo(database, port) as first:
        pass
    async with (
        running_demo(database, port) as second,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        assert ", as before" in second.text and "the earlier ones still work" in second.text
        assert second.partner_id == first.partner_id
        assert second.variables == first.variables  # same customer, same product
        assert second.headers != first.headers  # a fresh token ...
        for printed in (first, second):  # ... and the earlier one still signs in
            viewer = (await graphql(http, printed, VIEWER))["data"]["viewer"]
            assert viewer == {
                "email": "owner@demo-local.example",
                "role": "PARTNER_OWNER",
                "partner": {"id": first.partner_id},
            }
    assert partners(database) == 1


async def test_demo_on_a_busy_port_says_how_to_change_it_before_seeding(tmp_path: Path) -> None:
    database, port = tmp_path / "busy.sqlite3", free_port()

    async with running_demo(database, port):
        again = await cli(database, "demo", "--port", str(port))
        other_database = tmp_path / "fresh.sqlite3"
        fresh = await cli(other_database, "demo", "--port", str(port))

    for result in (again, fresh):
        assert result.code == 1, result
        assert result.stdout == ""  # no tokens printed for a gateway that never starts
        assert result.stderr.strip().splitlines() == [
            f"partner-billing: port {port} on 127.0.0.1 is already in use (another gateway?); "
            f"choose another: PORT={port + 1} scripts/demo, or partner-billing demo --port {port + 1}"
        ], result.stderr
    assert partners(database) == 1
    assert not other_database.exists()  # nothing was created before the check


async def test_demo_port_from_the_environment(tmp_path: Path) -> None:
    # PORT=… scripts/demo, as the message suggests: the variable reaches the check.
    with socket_listening() as port:
        result = await cli(tmp_path / "env.sqlite3", "demo", PORT=str(port))
    assert result.code == 1 and f"port {port} on 127.0.0.1 is already in use" in result.stderr, result.stderr


@contextlib.contextmanager
def socket_listening() -> Any:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# -- seed-demo's text ------------------------------------------------------------


async def test_seed_demo_text_prints_ids_and_variables_that_work(tmp_path: Path) -> None:
    database = tmp_path / "seed.sqlite3"
    first, second = await cli(database, "seed-demo"), await cli(database, "seed-demo")
    assert first.code == 0 and second.code == 0, (first.stderr, second.stderr)
    one, two = Printed.parse(first.stdout), Printed.parse(second.stdout)
    assert one.partner_id != two.partner_id  # seed-demo makes a new partner each time
    assert re.search(r"product plan_backup_essentials: prd_\w+ \(25 licenses, yearly\)", first.stdout)

    summary = next(doc for doc, declared, _ in readme_examples() if "licensePurchaseSummary" in doc)
    settings = sqlite_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{database}")
    async with serve_gateway(settings) as gateway:
        body = await graphql(gateway.http, one, summary)
    assert body["data"]["licensePurchaseSummary"]["total"]["currency"] == "USD"


# -- --help ------------------------------------------------------------------------


def options_without_help(help_text: str) -> list[str]:
    """Entries (options, positionals, commands) that argparse printed with no description."""
    missing = []
    lines = help_text.splitlines()
    in_section = False

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    for index, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(" "):
            in_section = line in ("options:", "positional arguments:")
            continue
        if not in_section or not line.strip() or indent(line) not in (2, 4):  # deeper: a wrapped description
            continue
        entry = line.strip()
        described = re.search(r"\S\s{2,}\S", entry) is not None
        continued = index + 1 < len(lines) and indent(lines[index + 1]) >= 8
        if not described and not continued:
            missing.append(entry)
    return missing


async def test_every_command_and_option_has_help(tmp_path: Path) -> None:
    top = await cli(tmp_path / "unused.sqlite3", "--help")
    assert top.code == 0, top.stderr
    commands = re.findall(r"^    ([a-z][a-z-]+)", top.stdout, flags=re.MULTILINE)
    assert {"serve", "demo", "seed-demo", "create-user", "create-token", "reconcile"} <= set(commands), top.stdout
    assert options_without_help(top.stdout) == []

    results = await asyncio.gather(*(cli(tmp_path / "unused.sqlite3", name, "--help") for name in commands))
    for name, result in zip(commands, results, strict=True):
        assert result.code == 0, (name, result.stderr)
        assert options_without_help(result.stdout) == [], (name, result.stdout)
    # the check bites
    sample = "positional arguments:\n  CMD\n    run      runs\n    stop\noptions:\n  --bare BARE\n  --ok OK  fine\n"
    assert options_without_help(sample) == ["CMD", "stop", "--bare BARE"]

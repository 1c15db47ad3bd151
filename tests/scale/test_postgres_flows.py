"""The suite's core flows again, on PostgreSQL instead of SQLite.

The purchase, renewal and subscription tests of ``tests/api/test_purchases.py``,
``tests/api/test_renewals.py`` and ``tests/subscriptions/test_streams.py`` that
need nothing but a ``gateway``
are collected here a second time, with ``gateway`` overridden by an in-process
gateway on PostgreSQL (its database migrated by the gateway's startup, as
in production). Same assertions, other database: PostgreSQL's
row locks, advisory locks and transactional semantics replace SQLite's single
writer, and these tests are what says the domain code is right on both.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from gateway.bootstrap import prepare_database
from models.database import Database
from tests.api import test_purchases, test_renewals
from tests.scale.conftest import pg_settings
from tests.subscriptions import test_streams
from tests.support.gateway import GatewayServer, serve_gateway

REUSED_MODULES: tuple[ModuleType, ...] = (test_purchases, test_renewals, test_streams)


@pytest.fixture
async def gateway(pg_url: str, pg_db: Database) -> AsyncIterator[GatewayServer]:
    """Like tests/conftest's, a database to itself (some tests count every row):
    the module's database, migrated, then emptied of everything but the
    catalogue (cheaper than a new database per test). The sandbox confirms
    after 150 ms, not 50: some tests look at an order before its payment
    succeeded, and on a loaded machine 50 ms does not always leave time."""
    await prepare_database(pg_db)
    tables = ", ".join(name for name in SQLModel.metadata.tables if name != "plans")
    async with pg_db.engine(write=True).begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    async with serve_gateway(pg_settings(pg_url, sandbox_confirm_delay_ms=150)) as server:
        assert server.runtime.db.engine().dialect.name == "postgresql"
        yield server


def _parametrized_names(test: Callable[..., Any]) -> set[str]:
    names: set[str] = set()
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            argnames = mark.args[0]
            names.update(argnames.replace(" ", "").split(",") if isinstance(argnames, str) else argnames)
    return names


def _needs_only_a_gateway(test: Callable[..., Any]) -> bool:
    parameters = set(inspect.signature(test).parameters) - _parametrized_names(test)
    return parameters == {"gateway"}


def _reused_tests() -> dict[str, Callable[..., Any]]:
    tests: dict[str, Callable[..., Any]] = {}
    for module in REUSED_MODULES:
        short = module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        for name, test in vars(module).items():
            if name.startswith("test_") and inspect.iscoroutinefunction(test) and _needs_only_a_gateway(test):
                tests[f"test_{short}__{name.removeprefix('test_')}"] = test
    return tests


REUSED_TESTS = _reused_tests()
globals().update(REUSED_TESTS)


def test_the_core_flows_are_collected_here() -> None:
    """Guard against the reuse silently collecting nothing after a rename."""
    names = set(REUSED_TESTS)
    assert len(names) >= 20, names
    assert any("buy_licenses" in name for name in names), names
    assert any("resuming_after_a_cursor" in name for name in names), names
    assert any("declined_card_goes_past_due" in name for name in names), names

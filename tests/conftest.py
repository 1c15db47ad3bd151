from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from settings import Settings
from tests.support.gateway import GatewayServer, serve_gateway


def sqlite_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}",
        "sandbox_confirm_delay_ms": 50,
        "rate_limit": None,
        "reconcile_interval_s": 0,
        "renewal_interval_s": 0,
        "event_poll_interval_s": 0.5,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A process environment with none of the gateway's variables set."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayServer]:
    async with serve_gateway(sqlite_settings(tmp_path)) as server:
        yield server

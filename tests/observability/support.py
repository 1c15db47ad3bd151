"""A gateway process to observe from outside: its metrics, its log lines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from billing.onboarding import DemoTenant, seed_demo
from models.database import Database
from tests.support.processes import GatewayProcess

__all__ = ["ObservedGateway", "Scrape", "observed_gateway"]


@dataclass
class Scrape:
    """One ``/metrics`` answer, parsed by prometheus-client's own parser."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name, frozenset(sample.labels.items())] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a series not (yet) reported."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class ObservedGateway:
    process: GatewayProcess
    database_url: str

    async def tenant(self) -> DemoTenant:
        db = Database(self.database_url)
        try:
            return await seed_demo(db)
        finally:
            await db.dispose()

    async def scrape(self, token: str | None = None) -> Scrape:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.process.url}/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return Scrape.parse(response.text)

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line the process wrote, each parsed as JSON (a line that is not JSON fails)."""
        return [json.loads(line) for line in self.process.log_text().splitlines() if line.strip()]


@contextlib.contextmanager
def observed_gateway(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    access_log: bool = False,
    uvicorn: Sequence[str] | None = None,
) -> Iterator[ObservedGateway]:
    """A new gateway process on a new SQLite file; ``uvicorn``: another way
    to run uvicorn's command line."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"
    options: dict[str, Any] = {"access_log": access_log}
    if uvicorn is not None:
        options["uvicorn"] = uvicorn
    process = GatewayProcess("observed", {"DATABASE_URL": database_url, **(env or {})}, tmp_path, **options)
    process.start()
    try:
        yield ObservedGateway(process, database_url)
    finally:
        process.stop()

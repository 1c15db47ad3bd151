"""Real processes for multi-instance tests: gateway instances run by uvicorn as
the Procfile runs them, and a private redis-server that a test may kill and
restart without touching this machine's shared one.

Every wait here is bounded; a process that does not come up fails the test
with the tail of its log instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import websockets

from tests.support.gateway import GraphQLClient, GraphQLWebSocket, free_port

__all__ = ["GatewayProcess", "PrivateRedis", "ProcessError", "running_gateways"]

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0  # two cold Python processes importing the gateway on 2 cores
STOP_TIMEOUT_S = 10.0
_POLL_S = 0.05

# The environment every test instance gets unless the test says otherwise:
# no rate limit (tests fire hundreds of requests with one token), no periodic
# reconciliation (it would hide a lost confirmation) nor renewal pass (tests
# run it themselves, with a clock of their own), quiet logs.
DEFAULT_ENV: Mapping[str, str] = {
    "RATE_LIMIT": "off",
    "RECONCILE_INTERVAL_S": "0",
    "RENEWAL_INTERVAL_S": "0",
    "SANDBOX_CONFIRM_DELAY_MS": "100",
    "LOG_LEVEL": "WARNING",
    "PAYMENT_PROVIDER": "sandbox",
}
# Never inherited from the test runner's environment.
_SCRUBBED = ("DATABASE_URL", "BROADCAST_URL", "HOST", "PORT", "WEB_CONCURRENCY", "STRIPE_API_KEY", "STRIPE_API_BASE")


class ProcessError(RuntimeError):
    """A helper process did not start, or died."""


class GatewayProcess:
    """``python -m uvicorn gateway.asgi:app --port N`` with its own environment."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        access_log: bool = False,
        uvicorn: Sequence[str] = (sys.executable, "-m", "uvicorn"),
    ) -> None:
        self.name = name
        self.access_log = access_log
        self.uvicorn = list(uvicorn)  # how to run uvicorn's command line
        self.port = free_port()
        self.log_path = log_dir / f"gateway-{name}-{self.port}.log"
        self._env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        self._env.update(DEFAULT_ENV)
        self._env.update(env)
        self._env["PYTHONUNBUFFERED"] = "1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def __repr__(self) -> str:
        return f"<gateway {self.name} on :{self.port}>"

    # -- lifecycle --------------------------------------------------------------

    def spawn(self) -> None:
        argv = [*self.uvicorn, "gateway.asgi:app", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--ws", "websockets-sansio", "--ws-per-message-deflate", "false"]
        argv += ["--ws-max-size", "262144"]
        argv += [] if self.access_log else ["--no-access-log"]
        argv += ["--timeout-graceful-shutdown", "2"]
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=self._env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until ``/healthz`` answers 200 (the lifespan, migrations included, is done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise ProcessError(f"{self} exited while starting:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(_POLL_S)
        raise ProcessError(f"{self} not healthy within {timeout}s:\n{self.log_tail()}")

    def start(self) -> None:
        self.spawn()
        self.wait_healthy()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)

    # -- logs -----------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- talking to it --------------------------------------------------------

    @contextlib.asynccontextmanager
    async def http(self, timeout: float = 30.0, max_connections: int = 100) -> AsyncIterator[httpx.AsyncClient]:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        async with httpx.AsyncClient(base_url=self.url, timeout=timeout, limits=limits) as client:
            yield client

    @contextlib.asynccontextmanager
    async def client(self, token: str | None = None) -> AsyncIterator[GraphQLClient]:
        async with self.http() as http:
            yield GraphQLClient(http, token)

    @contextlib.asynccontextmanager
    async def websocket(self, token: str | None) -> AsyncIterator[GraphQLWebSocket]:
        """A graphql-transport-ws connection, initialised and acknowledged."""
        async with websockets.connect(
            self.ws_url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            compression=None,
            open_timeout=10,
            close_timeout=2,
        ) as conn:
            ws = GraphQLWebSocket(conn)
            payload = {"Authorization": f"Bearer {token}"} if token else {}
            await conn.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = await ws.receive(timeout=10)
            assert ack["type"] == "connection_ack", ack
            yield ws

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.url}/readyz")
        body: dict[str, Any] = response.json()
        return response.status_code, body


@contextlib.contextmanager
def running_gateways(names: list[str], env: Mapping[str, str], log_dir: Path) -> Iterator[list[GatewayProcess]]:
    """Start several instances at once (they migrate the same database
    concurrently, as a deployment's instances do) and stop them all after."""
    gateways = [GatewayProcess(name, env, log_dir) for name in names]
    try:
        for gateway in gateways:
            gateway.spawn()
        for gateway in gateways:
            gateway.wait_healthy()
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()


class PrivateRedis:
    """A redis-server of the test's own on a free port: kill it, start it again
    on the same port, and this machine's shared Redis is never disturbed."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self._argv += ["--dir", str(workdir)]
        self._log_path = workdir / f"redis-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ProcessError(f"redis-server exited: {self._log_path.read_text(errors='replace')[-2000:]}")
            if self.answers_ping():
                return
            time.sleep(_POLL_S)
        raise ProcessError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing its connections politely."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(STOP_TIMEOUT_S)

    stop = kill

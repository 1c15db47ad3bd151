"""Gateway configuration, read once from the environment.

Every knob of ``API.md`` ("Running" and "Limits") lives here, so the rest of
the code never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["RateLimit", "Settings", "SettingsError", "load_settings", "parse_origins"]


class SettingsError(ValueError):
    """The environment asks for something the gateway refuses to run with."""


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per_seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        if text.strip().lower() == "off":
            return None
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour)\s*", text)
        if not match or int(match.group(1)) < 1:
            raise SettingsError(f"RATE_LIMIT must look like '600/minute' or 'off', got {text!r}")
        seconds = {"second": 1.0, "minute": 60.0, "hour": 3600.0}[match.group(2)]
        return cls(requests=int(match.group(1)), per_seconds=seconds)


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{Path('data') / 'gateway.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    broadcast_url: str = "memory://"
    payment_provider: str = "sandbox"
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    web_concurrency: int = 1
    rate_limit: RateLimit | None = RateLimit(600, 60.0)
    sandbox_confirm_delay_ms: int = 300
    max_body_bytes: int = 256 * 1024
    max_query_depth: int = 12
    max_aliases: int = 50
    max_fields: int = 1000
    introspection: bool = True
    max_tokens: int = 2000
    max_page_size: int = 100
    reconcile_interval_s: float = 60.0
    event_poll_interval_s: float = 2.0
    subscriber_queue_size: int = 1000
    log_level: str = "INFO"
    # Browser origins (``scheme://host[:port]``) whose pages may call the API
    # (CORS) and open its WebSocket; the gateway's own pages always may.
    allowed_origins: tuple[str, ...] = ()
    graphiql: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check(self) -> None:
        """Refuse configurations that would silently lose events or payments."""
        if self.payment_provider not in {"sandbox", "stripe"}:
            raise SettingsError("PAYMENT_PROVIDER must be 'sandbox' or 'stripe'")
        if self.payment_provider == "stripe" and not self.stripe_api_key:
            raise SettingsError("PAYMENT_PROVIDER=stripe needs STRIPE_API_KEY")
        if self.payment_provider == "stripe" and not self.stripe_webhook_secret:
            raise SettingsError("PAYMENT_PROVIDER=stripe needs STRIPE_WEBHOOK_SECRET")
        if self.web_concurrency < 1:
            raise SettingsError("WEB_CONCURRENCY must be at least 1")
        if self.web_concurrency > 1 and self.broadcast_url.startswith("memory"):
            raise SettingsError(
                "WEB_CONCURRENCY > 1 needs a shared BROADCAST_URL (redis://… or postgres://…): "
                "with memory:// a subscriber would miss events confirmed by another worker"
            )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in {"on", "true", "1", "yes"}:
        return True
    if raw in {"off", "false", "0", "no"}:
        return False
    raise SettingsError(f"{name} must be 'on' or 'off', got {raw!r}")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(text: str) -> tuple[str, ...]:
    """``ALLOWED_ORIGINS``: comma-separated exact origins, normalised to the
    form browsers send in ``Origin`` (lower case, no default port), because
    CORS and the WebSocket check compare strings."""
    origins: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            parts = urlsplit(item)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if (
            parts is None
            or parts.scheme.lower() not in _DEFAULT_PORTS
            or not parts.hostname
            or parts.path not in {"", "/"}
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise SettingsError(
                f"ALLOWED_ORIGINS lists exact origins such as 'http://localhost:5173' "
                f"(scheme, host, optional port; no path, no wildcard), got {item!r}"
            )
        scheme = parts.scheme.lower()
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        origin = f"{scheme}://{host}" if port in {None, _DEFAULT_PORTS[scheme]} else f"{scheme}://{host}:{port}"
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    defaults = Settings()
    settings = Settings(
        database_url=env.get("DATABASE_URL") or defaults.database_url,
        broadcast_url=env.get("BROADCAST_URL") or defaults.broadcast_url,
        payment_provider=(env.get("PAYMENT_PROVIDER") or defaults.payment_provider).lower(),
        stripe_api_key=env.get("STRIPE_API_KEY") or None,
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
        host=env.get("HOST") or defaults.host,
        port=_int(env, "PORT", defaults.port),
        web_concurrency=_int(env, "WEB_CONCURRENCY", defaults.web_concurrency),
        rate_limit=RateLimit.parse(env.get("RATE_LIMIT") or "600/minute"),
        sandbox_confirm_delay_ms=max(0, _int(env, "SANDBOX_CONFIRM_DELAY_MS", 300)),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
        max_query_depth=_int(env, "MAX_QUERY_DEPTH", defaults.max_query_depth),
        max_aliases=_int(env, "MAX_ALIASES", defaults.max_aliases),
        max_tokens=_int(env, "MAX_TOKENS", defaults.max_tokens),
        max_fields=_int(env, "MAX_FIELDS", defaults.max_fields),
        introspection=(env.get("INTROSPECTION") or "on").strip().lower() not in {"off", "false", "0"},
        reconcile_interval_s=float(_int(env, "RECONCILE_INTERVAL_S", 60)),
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        allowed_origins=parse_origins(env.get("ALLOWED_ORIGINS") or ""),
        graphiql=_switch(env, "GRAPHIQL", defaults.graphiql),
    )
    settings.check()
    return settings

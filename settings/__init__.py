"""Gateway configuration, read once from the environment.

Every knob of ``API.md`` ("Running" and "Limits") lives here, so the rest of
the code never reads ``os.environ`` itself. Each field of :class:`Settings` is
the environment variable of the same name in upper case, parsed and checked
by ``pydantic-settings``; docs/deploy.md's "Environment" table documents every
one of them (``tests/test_settings.py`` fails when a field is missing there).

Adding a setting: add a typed field with a default, constrain it (``Field(ge=…)``
or a validator), and add its row to the table. A list read from a
comma-separated variable needs ``Annotated[list[str], NoDecode]`` and a
``mode="before"`` validator that splits the text, as ``rate_limit`` does for
its own syntax (pydantic-settings would otherwise expect JSON).

``Settings(...)`` built with keyword arguments is exactly those arguments and
the defaults (tests rely on it); only :func:`load_settings` reads the process
environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import pydantic_settings
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from settings.urls import normalize_broadcast_url, normalize_database_url

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


_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",  # a misspelt keyword argument is an error, not a silent default
        case_sensitive=False,
        env_ignore_empty=True,  # `PORT=` means "the default", as it always has
        validate_default=True,
    )

    # Fields holding credentials (or URLs that may embed them) are kept out
    # of repr() and out of error messages: settings objects end up in logs.
    database_url: str = Field(default=f"sqlite+aiosqlite:///{Path('data') / 'gateway.sqlite3'}", repr=False)
    broadcast_url: str = Field(default="memory://", repr=False)
    payment_provider: str = "sandbox"
    stripe_api_key: str | None = Field(default=None, repr=False)
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = Field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = 1  # its lower bound is check()'s, with the reason
    # NoDecode: the variable is "600/minute" or "off", not JSON.
    rate_limit: Annotated[RateLimit | None, NoDecode] = RateLimit(600, 60.0)
    sandbox_confirm_delay_ms: int = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=256 * 1024, ge=1)
    max_query_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=50, ge=0)
    max_fields: int = Field(default=1000, ge=1)
    introspection: bool = True
    max_tokens: int = Field(default=2000, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    reconcile_interval_s: float = Field(default=60.0, ge=0)
    renewal_interval_s: float = Field(default=60.0, ge=0)
    # NoDecode: the variable is "1,3,7", not JSON.
    renewal_retry_days: Annotated[tuple[int, ...], NoDecode] = (1, 3, 7)
    event_poll_interval_s: float = Field(default=2.0, gt=0)
    subscriber_queue_size: int = Field(default=1000, ge=1)
    # Open WebSockets one token may hold (more: closed with 4429); 0: no limit.
    max_connections_per_token: int = Field(default=50, ge=0)
    # How often each instance re-checks the tokens of its open WebSockets
    # (revoked or expired: closed with 4401). API.md allows 10 s at most.
    token_recheck_interval_s: float = Field(default=5.0, gt=0, le=10)
    # How often last-use times of tokens are written (in batches).
    token_usage_flush_s: float = Field(default=10.0, gt=0)
    # The key of opaque cursors; unset: a random one made on first start and
    # kept in the database (every instance on it agrees).
    cursor_secret: str | None = Field(default=None, repr=False, min_length=32)
    # How long a write waits for another process's SQLite lock before the
    # request is answered "unavailable, retry".
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    # Short SQLite statements on the event loop's thread (models.inline_sqlite);
    # off: every statement through aiosqlite's threads.
    sqlite_inline: Annotated[bool, NoDecode] = True
    # Driver connections per instance; 0: the default for the database
    # (SQLite 4, each a thread of its own; PostgreSQL 10).
    database_pool_size: int = Field(default=0, ge=0, le=200)
    log_level: str = "INFO"
    # Browser origins (``scheme://host[:port]``) whose pages may call the API
    # (CORS) and open its WebSocket; the gateway's own pages always may.
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    graphiql: Annotated[bool, NoDecode] = True
    # Observability (docs/deploy.md, "Metrics, logs and traces").
    log_format: str = "json"
    metrics_token: str | None = Field(default=None, repr=False)
    # Several workers' metrics in one scrape; prometheus-client reads it too.
    prometheus_multiproc_dir: str | None = None
    # Tracing: None means "on when an OTLP endpoint is configured".
    otel: Annotated[bool | None, NoDecode] = None
    otel_exporter_otlp_endpoint: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments only: load_settings() hands over the environment
        # explicitly, so a test's Settings(...) never picks up the shell's.
        return (init_settings,)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("broadcast_url")
    @classmethod
    def _broadcast_url(cls, value: str) -> str:
        return normalize_broadcast_url(value)

    @field_validator("payment_provider")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate_limit(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return RateLimit.parse(value)
            except SettingsError:
                raise ValueError("must look like '600/minute', '10/second', '5000/hour' or 'off'") from None
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        return parse_origins(value) if isinstance(value, str) else value

    @field_validator("renewal_retry_days", mode="before")
    @classmethod
    def _retry_days(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "none":
                return ()
            try:
                value = tuple(int(part) for part in text.split(","))
            except ValueError:
                raise ValueError("must be whole days after the period end, e.g. '1,3,7', or 'none'") from None
        return value

    @field_validator("renewal_retry_days")
    @classmethod
    def _retry_days_increase(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 1 or day > 366 for day in value) or list(value) != sorted(set(value)):
            raise ValueError("retry days must increase, each from 1 to 366, e.g. '1,3,7'")
        return value

    @field_validator("graphiql", "otel", "sqlite_inline", mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        # Unlike pydantic's booleans, a misspelt switch is an error.
        if isinstance(value, str):
            word = value.strip().lower()
            if word in {"on", "true", "1", "yes"}:
                return True
            if word in {"off", "false", "0", "no"}:
                return False
            raise ValueError("must be 'on' or 'off'")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        word = value.strip().lower()
        if word not in {"json", "text"}:
            raise ValueError("must be 'json' (one JSON object a line) or 'text' (for a terminal)")
        return word

    @field_validator("prometheus_multiproc_dir")
    @classmethod
    def _multiprocess_dir(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"must be an existing directory, got {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level

    @property
    def tracing(self) -> bool:
        """Whether operations are traced: OTEL=on, or an OTLP endpoint set and OTEL not off."""
        return self.otel if self.otel is not None else self.otel_exporter_otlp_endpoint is not None

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


def _describe(exc: ValidationError) -> str:
    """One line naming each bad variable; never a traceback, never a secret."""
    problems = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        info = Settings.model_fields.get(field)
        if info is not None and info.repr:
            message += f", got {error['input']!r}"
        problems.append(f"{field.upper()}: {message}")
    return "; ".join(problems)


def load_settings() -> Settings:
    """Build :class:`Settings` from the process environment, refusing unsafe ones."""
    try:
        values: dict[str, Any] = EnvSettingsSource(Settings)()
        settings = Settings(**values)
    except pydantic_settings.SettingsError as exc:  # a value the source itself could not decode
        raise SettingsError(str(exc)) from None
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    settings.check()
    return settings

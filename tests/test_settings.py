"""Configuration: what each variable accepts, how a bad one is reported, and
that docs/deploy.md's table names every one of them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from settings import RateLimit, Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]
VARIABLES = [name.upper() for name in Settings.model_fields]


def documented_variables() -> list[str]:
    text = (REPO / "docs" / "deploy.md").read_text()
    section = text.split("\n## Environment\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_every_variable_is_documented_once_in_the_deploy_table() -> None:
    documented = documented_variables()
    assert len(documented) == len(set(documented)), "a variable has two rows"
    assert sorted(documented) == sorted(VARIABLES)


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.database_url == "sqlite+aiosqlite:///data/gateway.sqlite3"
    assert (settings.broadcast_url, settings.payment_provider, settings.port) == ("memory://", "sandbox", 8000)
    assert settings.rate_limit == RateLimit(600, 60.0)
    assert settings.introspection is True
    # Tracing is off unless configured (OTEL=on or an OTLP endpoint).
    assert settings.tracing is False
    assert settings.max_connections_per_token == 50


def test_values_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("PORT", "9001")
    env.setenv("rate_limit", "10/second")  # names are case-insensitive
    env.setenv("INTROSPECTION", "off")
    env.setenv("PAYMENT_PROVIDER", "Sandbox")
    env.setenv("LOG_LEVEL", "debug")
    env.setenv("RECONCILE_INTERVAL_S", "0.5")
    env.setenv("MAX_PAGE_SIZE", "")  # empty means the default
    env.setenv("BROADCAST_URL", "redis://127.0.0.1:6379/0")
    env.setenv("WEB_CONCURRENCY", "3")

    settings = load_settings()

    assert settings.port == 9001
    assert settings.rate_limit == RateLimit(10, 1.0)
    assert settings.introspection is False
    assert settings.payment_provider == "sandbox"
    assert settings.log_level == "DEBUG"
    assert settings.reconcile_interval_s == 0.5
    assert settings.max_page_size == 100
    assert settings.web_concurrency == 3


@pytest.mark.parametrize(("given", "used"), [(" 2, 5 ,10", (2, 5, 10)), ("1", (1,)), ("none", ())])
def test_renewal_retry_days(env: pytest.MonkeyPatch, given: str, used: tuple[int, ...]) -> None:
    env.setenv("RENEWAL_RETRY_DAYS", given)
    assert load_settings().renewal_retry_days == used


def test_the_billing_services_default_retry_days_are_the_settings_default() -> None:
    from billing.services import BillingServices

    default = BillingServices.__dataclass_fields__["renewal_retry_days"].default
    assert default == Settings().renewal_retry_days == (1, 3, 7)


def test_rate_limit_off(env: pytest.MonkeyPatch) -> None:
    env.setenv("RATE_LIMIT", "OFF")
    assert load_settings().rate_limit is None


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite+aiosqlite:///data/x.sqlite3", "sqlite+aiosqlite:///data/x.sqlite3"),
        ("sqlite:////tmp/x.sqlite3", "sqlite+aiosqlite:////tmp/x.sqlite3"),
        ("postgresql+asyncpg://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgres://u:p@db/app?ssl=require", "postgresql+asyncpg://u:p@db/app?ssl=require"),
        ("POSTGRES://u@db/app", "postgresql+asyncpg://u@db/app"),
    ],
)
def test_database_urls_are_mapped_to_the_async_drivers(env: pytest.MonkeyPatch, given: str, used: str) -> None:
    env.setenv("DATABASE_URL", given)
    assert load_settings().database_url == used


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "eighty", "PORT: Input should be a valid integer"),
        ("PORT", "70000", "PORT: Input should be less than or equal to 65535"),
        ("RATE_LIMIT", "lots", "RATE_LIMIT: must look like '600/minute'"),
        ("INTROSPECTION", "maybe", "INTROSPECTION: Input should be a valid boolean"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL: must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG"),
        ("SANDBOX_CONFIRM_DELAY_MS", "-5", "SANDBOX_CONFIRM_DELAY_MS: Input should be greater than or equal to 0"),
        ("MAX_QUERY_DEPTH", "0", "MAX_QUERY_DEPTH: Input should be greater than or equal to 1"),
        ("EVENT_POLL_INTERVAL_S", "soon", "EVENT_POLL_INTERVAL_S: Input should be a valid number"),
        ("PAYMENT_PROVIDER", "paypal", "PAYMENT_PROVIDER must be 'sandbox' or 'stripe'"),
        ("PAYMENT_PROVIDER", "stripe", "PAYMENT_PROVIDER=stripe needs STRIPE_API_KEY"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1"),
        ("WEB_CONCURRENCY", "4", "WEB_CONCURRENCY > 1 needs a shared BROADCAST_URL"),
        ("BROADCAST_URL", "amqp://guest:hunter2@mq/", "BROADCAST_URL: unsupported scheme 'amqp'; use memory://"),
        (
            "DATABASE_URL",
            "mysql://root:hunter2@db/app",
            "DATABASE_URL: unsupported scheme 'mysql'; use sqlite+aiosqlite",
        ),
        ("DATABASE_URL", "data/gateway.sqlite3", "DATABASE_URL: unsupported scheme none"),
        ("DATABASE_URL", "sqlite+aiosqlite://", "DATABASE_URL: a SQLite URL needs three slashes and a path"),
        ("RENEWAL_RETRY_DAYS", "1,x", "RENEWAL_RETRY_DAYS: must be whole days after the period end, e.g. '1,3,7'"),
        ("RENEWAL_RETRY_DAYS", "3,1", "RENEWAL_RETRY_DAYS: retry days must increase, each from 1 to 366"),
        ("RENEWAL_RETRY_DAYS", "0,2", "RENEWAL_RETRY_DAYS: retry days must increase, each from 1 to 366"),
        ("RENEWAL_INTERVAL_S", "-1", "RENEWAL_INTERVAL_S: Input should be greater than or equal to 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    env: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    assert "hunter2" not in message  # URLs may carry passwords: only the scheme is repeated
    assert "pydantic" not in message.lower()  # no "For further information visit errors.pydantic.dev"


def test_the_accepted_database_schemes_are_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "mysql://db/app")
    with pytest.raises(SettingsError, match=r"sqlite\+aiosqlite:///.*postgresql\+asyncpg://"):
        load_settings()


def test_secrets_stay_out_of_repr(env: pytest.MonkeyPatch) -> None:
    env.setenv("PAYMENT_PROVIDER", "stripe")
    env.setenv("STRIPE_API_KEY", "sk_test_hunter2")
    env.setenv("STRIPE_WEBHOOK_SECRET", "whsec_hunter2")
    env.setenv("DATABASE_URL", "postgres://app:hunter2@db/app")
    settings = load_settings()
    assert settings.stripe_api_key == "sk_test_hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


def test_keyword_arguments_ignore_the_environment(env: pytest.MonkeyPatch) -> None:
    # Tests and tools build Settings directly; the shell must not leak in.
    env.setenv("PORT", "9001")
    env.setenv("RATE_LIMIT", "off")
    settings = Settings(database_url="sqlite+aiosqlite:///x.sqlite3", rate_limit=None)
    assert (settings.port, settings.rate_limit) == (8000, None)
    assert Settings().rate_limit == RateLimit(600, 60.0)


def test_a_misspelt_keyword_is_an_error() -> None:
    with pytest.raises(ValueError, match="rate_limits"):
        Settings(rate_limits=None)  # type: ignore[call-arg]


def test_uvicorn_with_a_bad_variable_exits_with_one_line(tmp_path: Path) -> None:
    """The Procfile's `web:` process: a bad value must not be a traceback."""
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "RATE_LIMIT": "lots"}
    process = subprocess.run(
        [sys.executable, "-m", "uvicorn", "gateway.asgi:app", "--port", "0"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert "Traceback" not in process.stderr, process.stderr
    lines = process.stderr.strip().splitlines()
    assert lines == [
        "gateway: configuration error: RATE_LIMIT: must look like '600/minute', '10/second', "
        "'5000/hour' or 'off', got 'lots'"
    ], process.stderr

"""What the log scrubber removes, and which request ids a client may choose."""

from __future__ import annotations

import pytest

from observability.logs import redact
from observability.requests import sane_request_id


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ("Authorization: Bearer pbg_abcdefghijklmnop", "Authorization: Bearer [REDACTED]"),
        ('{"authorization": "bearer anything-at-all"}', '{"authorization": "bearer [REDACTED]"}'),
        ("token pbg_Xy-_0123456789abcdefgh used", "token pbg_[REDACTED] used"),
        ("key sk_test_51Habc123 and rk_live_9zz", "key sk_test_[REDACTED] and rk_live_[REDACTED]"),
        ("secret=whsec_abc+/def=", "secret=whsec_[REDACTED]"),
        ("clientSecret pi_3Nabc_secret_Zq12", "clientSecret pi_3Nabc_secret_[REDACTED]"),
        ("sandbox sbx_pi_1_secret_a-b_c9 done", "sandbox sbx_pi_1_secret_[REDACTED] done"),
        ("postgresql+asyncpg://app:hunter2@db:5432/x", "postgresql+asyncpg://app:[REDACTED]@db:5432/x"),
        ("rediss://:s3cr3t@cache:6380/0", "rediss://:[REDACTED]@cache:6380/0"),
        # Left alone: what merely looks related.
        ("order ord_123 paid with pm_card_visa", "order ord_123 paid with pm_card_visa"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("pk_test_abc is public", "pk_test_abc is public"),
    ],
)
def test_secrets_are_scrubbed_from_log_lines(line: str, logged: str) -> None:
    assert redact(line) == logged


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (b"abc-123", "abc-123"),
        (b"trace.1:span_2", "trace.1:span_2"),
        (b"x" * 128, "x" * 128),
        (b"x" * 129, None),
        (b"", None),
        (b"has space", None),
        (b"new\nline", None),
        (b'"quoted"', None),
        ("ü".encode(), None),
    ],
)
def test_a_client_request_id_is_kept_only_when_short_and_plain(given: bytes, kept: str | None) -> None:
    assert sane_request_id(given) == kept

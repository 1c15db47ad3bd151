"""Where the tests find this machine's PostgreSQL and Redis, and what they do
when one is missing: skip locally, fail in CI (``CI=true``)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
import redis

__all__ = ["IN_CI", "REDIS_URL", "require_redis", "unavailable"]

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service fails the test instead of skipping it)")
    pytest.skip(reason)


def require_redis() -> str:
    """The shared Redis's URL, once it answers PING."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis unreachable at {REDIS_URL}: {exc!r}")
    finally:
        client.close()
    return REDIS_URL

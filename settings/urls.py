"""Which ``DATABASE_URL`` and ``BROADCAST_URL`` schemes the gateway accepts.

The gateway is async throughout, so SQLAlchemy must be given the async
drivers (aiosqlite, asyncpg). The URLs people already have (Heroku's
``postgres://``, psql's ``postgresql://``, SQLAlchemy's ``sqlite:///``) name
no driver or a sync one; rather than fail at the first query with a driver
error, the plain forms are mapped to the async driver, and anything else is a
one-line refusal that names what is accepted. Error messages name the scheme
only: the rest of a URL may hold a password.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["BROADCAST_SCHEMES", "DATABASE_SCHEMES", "normalize_broadcast_url", "normalize_database_url"]

# scheme as written -> scheme SQLAlchemy is given
DATABASE_SCHEMES = {
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite": "sqlite+aiosqlite",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
BROADCAST_SCHEMES = ("memory", "redis", "rediss", "postgres", "postgresql")

_ACCEPTED_DATABASES = (
    "sqlite+aiosqlite:///path/to/file.sqlite3 or postgresql+asyncpg://user:password@host:5432/db "
    "(sqlite:///…, postgresql://… and postgres://… are read as those)"
)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def normalize_database_url(url: str) -> str:
    scheme = _scheme(url.strip())
    target = DATABASE_SCHEMES.get(scheme)
    if target is None:
        shown = repr(scheme) if scheme else "none"
        raise ValueError(f"unsupported scheme {shown}; use {_ACCEPTED_DATABASES}")
    rest = url.strip().split("://", 1)[1]
    if target.startswith("sqlite") and not rest.startswith("/"):
        raise ValueError("a SQLite URL needs three slashes and a path, e.g. sqlite+aiosqlite:///data/gateway.sqlite3")
    return f"{target}://{rest}"


def normalize_broadcast_url(url: str) -> str:
    url = url.strip()
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in BROADCAST_SCHEMES:
        shown = repr(scheme) if scheme else "none"
        raise ValueError(
            f"unsupported scheme {shown}; use memory://, redis://host:6379/0, rediss://… or postgres://user@host/db"
        )
    return url

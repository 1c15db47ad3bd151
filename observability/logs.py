"""Log lines: one JSON object a line (``LOG_FORMAT=json``) or plain text for
a terminal (``text``), each with the current request id, none with a secret.

Every record goes through one handler on the root logger, uvicorn's own
included (its startup lines, its errors and its access lines), so one
``LOG_LEVEL`` governs them all and a log shipper sees a single format.

Secrets are scrubbed from the finished line, whatever put them there (a
message, an argument, an exception's text, a traceback): bearer tokens, the
gateway's ``pbg_`` tokens, Stripe keys, webhook secrets and client secrets,
and passwords in URLs. Code should not log them in the first place; this is
the net under that rule.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from observability.requests import current_request_id

__all__ = ["LOG_FORMATS", "JsonLineFormatter", "TextLineFormatter", "configure_logging", "redact"]

LOG_FORMATS = ("json", "text")
REDACTED = "[REDACTED]"

# Each alternative keeps a recognisable prefix and drops the secret itself.
_SECRET = re.compile(
    r"(?P<keep>(?i:bearer)\s+)[^\s\"',;]+"  # Authorization: Bearer <anything>
    r"|(?P<keep2>\bpbg_)[A-Za-z0-9_-]{8,}"  # the gateway's API tokens
    r"|(?P<keep3>\b(?:sk|rk)_(?:test|live)_)[A-Za-z0-9]+"  # Stripe secret and restricted keys
    r"|(?P<keep4>\bwhsec_)[A-Za-z0-9+/=]+"  # Stripe webhook signing secrets
    r"|(?P<keep5>_secret_)[A-Za-z0-9_-]+"  # client secrets (Stripe's, and the sandbox's token_urlsafe)
    r"|(?P<keep6>://[^/\s:@\"']*:)[^@\s/\"']+(?=@)"  # user:password@ in URLs
)


def _keep(match: re.Match[str]) -> str:
    return next(value for value in match.groups() if value is not None) + REDACTED


def redact(text: str) -> str:
    """``text`` with every secret the patterns know replaced by ``[REDACTED]``."""
    return _SECRET.sub(_keep, text)


def _iso_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _RequestContext(logging.Filter):
    """Adds ``request_id`` (and, for uvicorn's access lines, the request's
    method, path and status as fields of their own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = current_request_id()
            if request_id is not None:
                record.request_id = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, full_path, _http_version, status = record.args
            record.client = client
            record.method = method
            record.path = str(full_path).partition("?")[0]
            record.status = status
        return True


class JsonLineFormatter(JsonFormatter):
    """``{"time", "level", "logger", "message", "request_id", …extra fields, "exc_info"}``."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn's copy of its message with terminal colour codes.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_time(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class TextLineFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z INFO gateway.errors [request id]: message``."""

    def __init__(self) -> None:
        line = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
        super().__init__(line, defaults={"request_id": "-"})

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_time(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(*, level: str, format: str = "json", stream: IO[str] | None = None) -> None:
    """Route every logger (uvicorn's too) to one handler writing ``format`` lines."""
    if format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if format == "json" else TextLineFormatter())
    handler.addFilter(_RequestContext())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn configured its loggers (own handlers, no propagation) before
    # importing the app: send their records to the one handler instead, at
    # the gateway's level (a disabled level also skips building the record).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(level)

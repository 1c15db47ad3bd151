"""The request id: one per HTTP request and one per WebSocket operation.

It lives in a context variable, so every log line written while handling a
request (in any module, in tasks it starts) can carry it without passing it
around. A client may choose it (``X-Request-ID``) to find its own request in
the logs; a value that is too long or holds anything but letters, digits and
``._:-`` is replaced, since it ends up in log lines and response headers.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar, Token

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_ID_HEADER",
    "bind_request_id",
    "current_request_id",
    "new_request_id",
    "reset_request_id",
    "sane_request_id",
]

REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID_LENGTH = 128
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,%d}" % MAX_REQUEST_ID_LENGTH)

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_request_id() -> str:
    """32 hex digits (128 random bits). It names a request in the logs and is
    no secret, so the fast generator serves (os.urandom is a system call)."""
    return f"{random.getrandbits(128):032x}"


def sane_request_id(value: bytes) -> str | None:
    """The client's id if it is safe to log and echo, else None."""
    return value.decode("ascii") if _SANE.fullmatch(value) else None


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(request_id: str) -> Token[str | None]:
    """Make ``request_id`` current in this context; undo with :func:`reset_request_id`."""
    return _request_id.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)

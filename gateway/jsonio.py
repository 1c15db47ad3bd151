"""JSON in and out of the gateway: orjson, with the standard library behind it
for the one thing orjson refuses that JSON allows: lone surrogates."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def loads(data: str | bytes) -> Any:
    """Parse JSON; raise ``json.JSONDecodeError`` (a ``ValueError``) when it is not JSON.

    orjson rejects escaped lone surrogates (``"\\ud800"``), which JSON permits;
    such a body is parsed by the standard library instead, so a hostile id or
    key gets the contract's answer (NOT_FOUND, BAD_USER_INPUT) rather than
    "not valid JSON"."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as refused:
        try:
            return json.loads(data)
        except RecursionError:
            # Nested past the interpreter's depth (orjson refuses past 1,024
            # levels too): malformed for us, never a crash. JSONDecodeError is
            # what every caller (and Strawberry's socket reader) expects.
            raise json.JSONDecodeError("JSON nested too deeply", data if isinstance(data, str) else "", 0) from None
        except UnicodeDecodeError:
            # Bytes that are not UTF-8 fail before the standard library parses:
            # "not JSON" as orjson said, not the 500 a UnicodeDecodeError was
            # on Strawberry's view (it turns only JSONDecodeError into a 400).
            raise refused from None


def dumps(data: object) -> bytes:
    """``data`` as JSON (UTF-8).

    An error message may quote what the client sent (an unknown input field,
    an operation name, an enum value), lone surrogates included; orjson
    refuses to write those, so such a body is written by the standard library,
    which escapes them (``"\\ud800"``) as the client may have sent them."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()

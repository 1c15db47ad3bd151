"""JSON in and out of the gateway: orjson, with the standard library behind it
for the one thing orjson refuses that JSON allows."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads"]


def loads(data: str | bytes) -> Any:
    """Parse JSON; raise ``ValueError`` when it is not JSON.

    orjson rejects escaped lone surrogates (``"\\ud800"``), which JSON permits;
    such a body is parsed by the standard library instead, so a hostile id or
    key gets the contract's answer (NOT_FOUND, BAD_USER_INPUT) rather than
    "not valid JSON"."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)

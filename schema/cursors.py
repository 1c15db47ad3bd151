"""Opaque cursors: what a page or an event stream resumes from, sealed so a
client can neither read nor forge it.

A cursor is the position's values (an event's sequence number, an order's
creation time and id, …) encrypted with AES-SIV, a deterministic authenticated
cipher, under the gateway's cursor key, with its kind and its scope (the
partner, or the customer, it was issued for) as associated data. So:

* it reveals nothing: not the global event sequence (how busy other partners
  are), not timestamps;
* the same position always gives the same cursor (an event's cursor is stable
  however often it is delivered) and any instance with the key reads it;
* a cursor that was altered, made up, made under another key, or issued for
  another partner or customer fails to open and is ``BAD_USER_INPUT``.

The key comes from ``CURSOR_SECRET`` or, unset, a random secret the first
start stores in the database (see ``gateway.bootstrap``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from billing.errors import BadUserInput

__all__ = ["MAX_CURSOR_LENGTH", "CursorCodec", "CursorValue"]

CursorValue = str | int
# Far more than any cursor made here; longer input is refused before decoding.
MAX_CURSOR_LENGTH = 512
_MAX_INT = 2**63 - 1  # what the databases' BIGINT holds
_MALFORMED = "Malformed cursor."


class CursorCodec:
    def __init__(self, secret: str) -> None:
        # AES-SIV with AES-256 takes a 512-bit key; derived, so any long
        # enough secret will do.
        key = hmac.new(secret.encode(), b"partner-billing cursors v1", hashlib.sha512).digest()
        self._siv = AESSIV(key)

    def encode(self, kind: str, scope: str, *values: CursorValue) -> str:
        plain = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()
        sealed = self._siv.encrypt(plain, [kind.encode(), scope.encode()])
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def decode(self, cursor: str, kind: str, scope: str, arity: int) -> list[CursorValue]:
        """The values of a cursor this codec made for ``kind`` and ``scope``;
        BAD_USER_INPUT for anything else."""
        if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH or not cursor.isascii():
            raise BadUserInput(_MALFORMED)
        try:
            sealed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json.loads(self._siv.decrypt(sealed, [kind.encode(), scope.encode()]))
        except (binascii.Error, ValueError, InvalidTag):
            raise BadUserInput(_MALFORMED) from None
        if not isinstance(values, list) or len(values) != arity or not all(_sane(v) for v in values):
            raise BadUserInput(_MALFORMED)
        return values

    def decode_int(self, cursor: str, kind: str, scope: str) -> int:
        (value,) = self.decode(cursor, kind, scope, 1)
        if not isinstance(value, int) or value < 0:
            raise BadUserInput(_MALFORMED)
        return value


def _sane(value: object) -> bool:
    """Values the reads can use as they are: bounded integers, printable text."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_MAX_INT <= value <= _MAX_INT
    return isinstance(value, str) and _encodable(value)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True

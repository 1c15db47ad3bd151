"""Bearer tokens: 256 random bits, shown once, stored as SHA-256.

A slow password hash buys nothing here: the tokens are random, not chosen by
people, so a fast hash is as strong and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from models import ApiToken

__all__ = ["TOKEN_PREFIX", "hash_token", "issue_token", "issue_token_row", "looks_like_token"]

TOKEN_PREFIX = "pbg_"
_TOKEN_BODY_LEN = 43  # secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + _TOKEN_BODY_LEN


async def issue_token(
    session: AsyncSession, *, user_id: str, label: str = "", expires_at: datetime | None = None
) -> str:
    """Store a new token for ``user_id`` and return it; it cannot be read back."""
    return (await issue_token_row(session, user_id=user_id, label=label, expires_at=expires_at))[1]


async def issue_token_row(
    session: AsyncSession, *, user_id: str, label: str = "", expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """:func:`issue_token`, with the stored row (its id, its expiry)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id, token_hash=hash_token(token), display_prefix=token[:10], label=label, expires_at=expires_at
    )
    session.add(row)
    return row, token

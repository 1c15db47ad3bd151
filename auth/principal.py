"""Who is calling: resolved from ``Authorization: Bearer <token>``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select

from auth.tokens import hash_token, looks_like_token
from models import PartnerRole
from models.base import utcnow
from models.database import Connection, Query
from models.tables import api_tokens, partners, users

__all__ = ["Principal", "authenticate", "parse_bearer"]


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    email: str
    partner_id: str
    partner_name: str
    role: PartnerRole
    token_id: str = ""


def parse_bearer(value: object) -> str | None:
    """The token from an ``Authorization`` value, or None if it is not one."""
    if not isinstance(value, str):
        return None
    parts = value.split(None, 1)  # any run of spaces or tabs
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    token = parts[1].strip()
    return token if looks_like_token(token) else None


# One statement: the token's user and the user's partner (the viewer needs
# its name), unless the token is revoked or expired.
_BY_TOKEN_HASH = Query(
    select(users.c.id, users.c.email, users.c.partner_id, partners.c.name, users.c.role, api_tokens.c.id)
    .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id).join(partners))
    .where(
        api_tokens.c.token_hash == bindparam("token_hash"),
        api_tokens.c.revoked_at.is_(None),
        or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > bindparam("now")),
    )
)


async def authenticate(conn: Connection, authorization: object) -> Principal | None:
    """The caller named by an ``Authorization`` value, or None."""
    token = parse_bearer(authorization)
    if token is None:
        return None
    row = await conn.first(_BY_TOKEN_HASH, token_hash=hash_token(token), now=utcnow())
    if row is None:
        return None
    user_id, email, partner_id, partner_name, role, token_id = row
    return Principal(user_id, email, partner_id, partner_name, PartnerRole(role), token_id)

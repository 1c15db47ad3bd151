"""Who is calling: resolved from ``Authorization: Bearer <token>``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from auth.tokens import hash_token, looks_like_token
from models import ApiToken, PartnerRole, User
from models.database import Database

__all__ = ["Principal", "authenticate", "parse_bearer"]


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    partner_id: str
    role: PartnerRole


def parse_bearer(value: object) -> str | None:
    """The token from an ``Authorization`` value, or None if it is not one."""
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token if looks_like_token(token) else None


async def authenticate(db: Database, authorization: object) -> Principal | None:
    """The caller named by an ``Authorization`` value, or None."""
    token = parse_bearer(authorization)
    if token is None:
        return None
    async with db.read() as session:
        row = (
            await session.exec(
                select(User)
                .join(ApiToken, col(ApiToken.user_id) == col(User.id))
                .where(ApiToken.token_hash == hash_token(token), col(ApiToken.revoked_at).is_(None))
            )
        ).first()
    if row is None:
        return None
    return Principal(user_id=row.id, email=row.email, partner_id=row.partner_id, role=PartnerRole(row.role))

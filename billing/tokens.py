"""API tokens as an operator manages them (``partner-billing create-token``,
``list-tokens``, ``revoke-token``): issued with an optional expiry, listed
without their secret, revoked at once. Issuing and revoking are recorded in
the partner's audit trail as partner-wide system actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth.tokens import hash_token, issue_token_row, looks_like_token
from billing.access import plausible_id
from billing.errors import BadUserInput, NotFound
from models import ApiToken, AuditEntry, User
from models.base import utcnow

__all__ = [
    "MAX_EXPIRY_DAYS",
    "IssuedToken",
    "TokenView",
    "create_token",
    "list_tokens",
    "revoke_token",
]

MAX_EXPIRY_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: str
    token: str  # shown once, never stored
    expires_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "token": self.token, "expiresAt": _iso(self.expires_at)}


@dataclass(frozen=True, slots=True)
class TokenView:
    """What an operator may see of a token: never the token itself."""

    id: str
    user_id: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        return cls(row.id, row.user_id, row.label, row.created_at, row.last_used_at, row.expires_at, row.revoked_at)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "label": self.label,
            "createdAt": _iso(self.created_at),
            "lastUsedAt": _iso(self.last_used_at),
            "expiresAt": _iso(self.expires_at),
            "revokedAt": _iso(self.revoked_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _audit(partner_id: str, action: str, token_id: str, user_id: str) -> AuditEntry:
    # An operator at the command line is not a partner user: the system acted.
    return AuditEntry(partner_id=partner_id, action=action, target_id=token_id, outcome="OK", detail={"user": user_id})


async def create_token(
    session: AsyncSession, *, user_id: str, label: str = "", expires_in_days: int | None = None
) -> IssuedToken:
    user = await session.get(User, user_id) if plausible_id(user_id) else None
    if user is None:
        raise NotFound(f"No user {user_id!r}.")
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise BadUserInput(f"--expires-in-days must be 1 to {MAX_EXPIRY_DAYS}.")
        expires_at = utcnow() + timedelta(days=expires_in_days)
    row, token = await issue_token_row(session, user_id=user.id, label=label, expires_at=expires_at)
    session.add(_audit(user.partner_id, "token.created", row.id, user.id))
    return IssuedToken(row.id, token, expires_at)


async def list_tokens(session: AsyncSession, *, partner_id: str) -> list[TokenView]:
    """The partner's users' tokens, oldest first (revoked and expired ones too)."""
    query = (
        select(ApiToken)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(col(User.partner_id) == partner_id)
        .order_by(col(ApiToken.created_at), col(ApiToken.id))
    )
    return [TokenView.of(row) for row in (await session.exec(query)).all()]


async def revoke_token(session: AsyncSession, token_or_id: str) -> tuple[TokenView, bool]:
    """Revoke a token named by itself or by its id; returns it and whether it
    was revoked now (False: it already was)."""
    by_token = looks_like_token(token_or_id)
    query = select(ApiToken, User.partner_id).join(User, col(User.id) == col(ApiToken.user_id))
    if by_token:
        query = query.where(col(ApiToken.token_hash) == hash_token(token_or_id))
    elif plausible_id(token_or_id):
        query = query.where(col(ApiToken.id) == token_or_id)
    else:
        raise NotFound("No such token.")
    found = (await session.exec(query)).first()
    if found is None:
        # Never echo what may be a secret.
        raise NotFound("No such token." if by_token else f"No token {token_or_id!r}.")
    row, partner_id = found
    if row.revoked_at is not None:
        return TokenView.of(row), False
    row.revoked_at = utcnow()
    session.add(row)
    session.add(_audit(partner_id, "token.revoked", row.id, row.user_id))
    return TokenView.of(row), True

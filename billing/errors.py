"""Failures the domain reports.

GatewayError                  a top-level GraphQL error with ``extensions.code``
├── Unauthenticated           UNAUTHENTICATED: no or bad token
├── Forbidden                 FORBIDDEN: the role may not do this
├── NotFound                  NOT_FOUND: nothing the caller may see has this id
├── BadUserInput              BAD_USER_INPUT: malformed argument
├── RateLimited               RATE_LIMITED
└── QueryTooComplex           QUERY_TOO_COMPLEX

UserErrors                    a business outcome, reported in a payload's ``userErrors``
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BadUserInput",
    "Forbidden",
    "GatewayError",
    "NotFound",
    "QueryTooComplex",
    "RateLimited",
    "Unauthenticated",
    "UserError",
    "UserErrors",
]


class GatewayError(Exception):
    code = "INTERNAL"
    default_message = "Internal error."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"
    default_message = "Missing or invalid API token."


class Forbidden(GatewayError):
    code = "FORBIDDEN"
    default_message = "Your role may not do this."


class NotFound(GatewayError):
    code = "NOT_FOUND"
    default_message = "Not found."


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"
    default_message = "Invalid input."


class RateLimited(GatewayError):
    code = "RATE_LIMITED"
    default_message = "Rate limit exceeded; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueryTooComplex(GatewayError):
    code = "QUERY_TOO_COMPLEX"
    default_message = "Query is too complex."


@dataclass(frozen=True)
class UserError:
    code: str
    message: str
    field: tuple[str, ...] | None = None


class UserErrors(Exception):
    """A mutation's expected failure; nothing was changed (except, for a
    declined charge, the order itself)."""

    def __init__(self, *errors: UserError) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors

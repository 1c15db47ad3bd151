"""API tokens and the authenticated caller."""

from auth.principal import Principal, authenticate, parse_bearer
from auth.tokens import TOKEN_PREFIX, hash_token, issue_token

__all__ = ["TOKEN_PREFIX", "Principal", "authenticate", "hash_token", "issue_token", "parse_bearer"]

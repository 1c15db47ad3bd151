"""Parse and validate each distinct query text once.

A request's query goes through three checks before anything runs: the
parser's token limit, the linear limits of :mod:`schema.limits`, and
graphql-core's validation rules (only when the limits pass). The outcome is
cached by the query text itself, so a dashboard sending the same document
again pays a dictionary lookup (a string's hash is cached by Python), where
caches keyed by the parsed document would hash the whole tree each time.

Both ways in share one cache: the HTTP fast path (:mod:`gateway.endpoint`)
asks it directly, and Strawberry's own execution (GET, WebSocket) through
:class:`PreparedDocuments`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.limits import Limits, check_limits

__all__ = ["DocumentCache", "Prepared", "PreparedDocuments"]

# Texts longer than this are parsed every time: the cache keeps at most
# _CACHED_DOCUMENTS of them, so it stays small whatever clients send.
_CACHEABLE_LENGTH = 4096
_CACHED_DOCUMENTS = 256


@dataclass(frozen=True, slots=True)
class Prepared:
    """A query text's document, or the errors that refuse it."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...] = ()


class DocumentCache:
    def __init__(self, schema: GraphQLSchema, limits: Limits, *, max_tokens: int, introspection: bool) -> None:
        self._schema = schema
        self._limits = limits
        self._max_tokens = max_tokens
        rules: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)
        if not introspection:
            rules += (NoSchemaIntrospectionCustomRule,)
        self._rules = rules
        # With introspection off, "Did you mean …?" would still tell the names.
        self._suggest = introspection
        self._cached = lru_cache(maxsize=_CACHED_DOCUMENTS)(self._prepare)

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @staticmethod
    def cacheable(query: str) -> bool:
        """Whether :meth:`get` keeps this text's outcome (a longer one is parsed each time)."""
        return len(query) <= _CACHEABLE_LENGTH

    def get(self, query: str) -> Prepared:
        return self._cached(query) if self.cacheable(query) else self._prepare(query)

    def _prepare(self, query: str) -> Prepared:
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError as error:
            return Prepared(None, (error,))
        errors = check_limits(document, self._limits) or validate_document(self._schema, document, self._rules)
        if not self._suggest:
            for refusal in errors:
                refusal.message = refusal.message.split(" Did you mean ")[0]
        return Prepared(document, tuple(errors))


class PreparedDocuments(SchemaExtension):
    """Strawberry's parse and validate steps, answered from a :class:`DocumentCache`
    (set on a subclass: Strawberry builds extensions per request)."""

    cache: DocumentCache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        prepared = self.cache.get(context.query or "")
        if prepared.document is None:
            # Not a document: Strawberry's own parse step fails on it again,
            # within the same token limit, and reports the error as it reports
            # its own. Raised from here, the error escaped that step: HTTP's
            # execution caught it anyway, but over WebSocket the operation died
            # with no answer (graphql-ws) or a bare complete (graphql-transport-ws)
            # and its task's exception was logged.
            context.parse_options["max_tokens"] = self.cache.max_tokens
            yield
            return
        context.graphql_document = prepared.document
        context.pre_execution_errors = list(prepared.errors)
        yield

    def on_validate(self) -> Iterator[None]:
        # Already validated in on_parse; an empty list means "valid".
        yield

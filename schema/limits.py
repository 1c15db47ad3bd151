"""Query limits, checked in time linear in the document.

``measure`` walks each operation once and each fragment definition once
(memoised by name), so no arrangement of fragment spreads can make the check
itself expensive: a fragment spread twice in each of 40 nested fragments costs
40 measurements, not 2^40. Three figures come out, each capped just above its
limit so the numbers stay small:

* depth: nesting of fields, through fragments; introspection subtrees
  (``__schema``, ``__type``) are left out, since GraphiQL's own schema query
  nests deeper than any API query needs;
* aliases: aliased fields, introspection included, counted as often as
  fragments repeat them;
* fields: every field the operation selects once fragments are expanded. A
  document within the token limit written out by hand selects at most about a
  thousand; more means fragments multiply it;
* overlaps: pairs of fields sharing a response name in one selection set
  (fragments' top-level fields included). graphql-core's
  OverlappingFieldsCanBeMerged compares each such pair, so a few hundred
  copies of ``viewer { id }`` would cost it a quadratic half second; no real
  query needs more than a few hundred pairs.

:class:`schema.documents.DocumentCache` runs this check before graphql-core's
own validation and skips that when it refuses, so a hostile document never
reaches the specification's rules either.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

__all__ = ["MAX_OVERLAPPING_PAIRS", "Limits", "Measure", "check_limits", "measure"]

MAX_OVERLAPPING_PAIRS = 2000


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_fields: int


@dataclass(frozen=True)
class Measure:
    depth: int
    aliases: int
    fields: int
    overlaps: int = 0
    # Response names at this selection set's top level (fragments included).
    names: Counter[str] = field(default_factory=Counter, compare=False, repr=False)


_EMPTY = Measure(0, 0, 0)


class _Measurer:
    """Measures selection sets; each fragment once, whatever its spreads."""

    def __init__(self, document: DocumentNode, limits: Limits) -> None:
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.memo: dict[str, Measure] = {}
        # Caps keep the figures (and the walk below the depth limit) bounded.
        self.depth_cap = limits.max_depth + 1
        self.alias_cap = limits.max_aliases + 1
        self.field_cap = limits.max_fields + 1
        self.overlap_cap = MAX_OVERLAPPING_PAIRS + 1

    def fragment(self, name: str) -> Measure:
        known = self.memo.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        # Unknown or cyclic fragments measure as empty; graphql-core's own
        # rules (KnownFragmentNames, NoFragmentCycles) report them.
        self.memo[name] = _EMPTY
        if definition is None:
            return _EMPTY
        measured = self.selection_set(definition.selection_set, 0)
        self.memo[name] = measured
        return measured

    def selection_set(self, selection_set: SelectionSetNode | None, level: int) -> Measure:
        """The measure of a selection set found ``level`` fields deep."""
        if selection_set is None or level >= self.depth_cap:
            return _EMPTY
        depth = aliases = fields = overlaps = 0
        names: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set, level + 1)
                if not selection.name.value.startswith("__"):
                    depth = max(depth, inner.depth + 1)
                aliases += inner.aliases + (selection.alias is not None)
                fields += inner.fields + 1
                names[(selection.alias or selection.name).value] += 1
            else:
                if isinstance(selection, InlineFragmentNode):
                    inner = self.selection_set(selection.selection_set, level)
                else:
                    assert isinstance(selection, FragmentSpreadNode)
                    inner = self.fragment(selection.name.value)
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                fields += inner.fields
                names.update(inner.names)
            overlaps += inner.overlaps
            if aliases >= self.alias_cap or fields >= self.field_cap or overlaps >= self.overlap_cap:
                break  # refused whatever follows
        overlaps += sum(n * (n - 1) // 2 for n in names.values())
        return Measure(
            min(depth, self.depth_cap),
            min(aliases, self.alias_cap),
            min(fields, self.field_cap),
            min(overlaps, self.overlap_cap),
            Counter({name: min(n, self.field_cap) for name, n in names.items()}),
        )


def measure(document: DocumentNode, operation: OperationDefinitionNode, limits: Limits) -> Measure:
    return _Measurer(document, limits).selection_set(operation.selection_set, 0)


def _too_complex(node: OperationDefinitionNode, message: str) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": "QUERY_TOO_COMPLEX"})


def check_limits(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """QUERY_TOO_COMPLEX errors for the operations over a limit."""
    measurer = _Measurer(document, limits)
    errors: list[GraphQLError] = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        figures = measurer.selection_set(definition.selection_set, 0)
        if figures.depth > limits.max_depth:
            errors.append(_too_complex(definition, f"Query depth exceeds the limit of {limits.max_depth}."))
        elif figures.aliases > limits.max_aliases:
            errors.append(_too_complex(definition, f"Query uses more than {limits.max_aliases} aliases."))
        elif figures.fields > limits.max_fields:
            errors.append(
                _too_complex(definition, f"Query selects more than {limits.max_fields} fields once fragments expand.")
            )
        elif figures.overlaps > MAX_OVERLAPPING_PAIRS:
            errors.append(_too_complex(definition, "Query repeats the same fields too often in one selection."))
    return errors

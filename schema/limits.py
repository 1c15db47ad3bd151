"""Query limits: depth and aliases (validation rule), tokens (parser option)."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

__all__ = ["complexity_rule"]


def complexity_rule(*, max_depth: int, max_aliases: int) -> type[ValidationRule]:
    class ComplexityRule(ValidationRule):
        """Refuse operations deeper than ``max_depth`` or with more than
        ``max_aliases`` aliases. Introspection fields (``__schema``…) are not
        counted, so GraphiQL's own schema query always passes."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments: dict[str, FragmentDefinitionNode] = {
                d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            depth, aliases = self._measure(node.selection_set, frozenset())
            if depth > max_depth:
                self._refuse(node, f"Query depth {depth} exceeds the limit of {max_depth}.")
            elif aliases > max_aliases:
                self._refuse(node, f"Query uses {aliases} aliases; the limit is {max_aliases}.")

        def _refuse(self, node: OperationDefinitionNode, message: str) -> None:
            self.report_error(GraphQLError(message, node, extensions={"code": "QUERY_TOO_COMPLEX"}))

        def _measure(self, selection_set: SelectionSetNode | None, seen: frozenset[str]) -> tuple[int, int]:
            """(depth, aliases) of a selection set, following fragments once each."""
            if selection_set is None:
                return 0, 0
            depth = aliases = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    if selection.name.value.startswith("__"):
                        continue
                    sub_depth, sub_aliases = self._measure(selection.selection_set, seen)
                    depth = max(depth, sub_depth + 1)
                    aliases += sub_aliases + (1 if selection.alias else 0)
                elif isinstance(selection, InlineFragmentNode):
                    sub_depth, sub_aliases = self._measure(selection.selection_set, seen)
                    depth, aliases = max(depth, sub_depth), aliases + sub_aliases
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in seen:
                        continue  # other rules report unknown or cyclic fragments
                    sub_depth, sub_aliases = self._measure(fragment.selection_set, seen | {name})
                    depth, aliases = max(depth, sub_depth), aliases + sub_aliases
            return depth, aliases

    return ComplexityRule

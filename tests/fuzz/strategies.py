"""Hypothesis strategies for the fuzz tests: operations generated from the
committed ``schema.graphql`` (hypothesis-graphql), the same operations taking
their arguments as variables, hostile JSON values, hand-made hostile
documents and malformed HTTP envelopes.

Generated ids are mostly the seeded rows' (and another partner's), so the
operations reach real data and the tenancy checks; strings and variables mix
in NUL bytes, lone surrogates, huge and non-finite numbers, deep nesting and
wrong types. JSON nested deeper than the encoder itself can write is sent as
a placeholder that :func:`encode` expands in the body's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import graphql
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableDefinitionNode,
    VariableNode,
)
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, queries

from tests.fuzz.target import Seeded, deep

__all__ = [
    "SCHEMA",
    "Generated",
    "Hostile",
    "generated_operations",
    "hostile_documents",
    "hostile_json",
    "hostile_strings",
    "subscription_documents",
    "weighted",
]

SCHEMA: GraphQLSchema = graphql.build_schema((Path(__file__).resolve().parents[2] / "schema.graphql").read_text())

# -- values -----------------------------------------------------------------------

HOSTILE_STRINGS = (
    "",
    "\u0000",
    "x\u0000y",
    "\ud800",
    "cst_\udfff",
    "\ufeff",
    "\u202e",
    "🦄" * 40,
    "x" * 5000,
    "' OR '1'='1",
    "%",
    "_",
    "\\",
    "NULL",
    "-1",
    "1e309",
    "ord_",
    "pm_card_visa",
    "pm_card_chargeDeclined",
    "eyJhIjoxfQ",  # base64 of {"a":1}: cursor-shaped
    "WyJldnQiLDEyMzQ1Njc4OTAxMjM0NTY3ODkwXQ",  # ["evt",12345678901234567890]
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says (st.one_of
    flattens nested one_ofs into siblings, so the branch with the most
    alternatives inside would be drawn the most)."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


def hostile_strings() -> st.SearchStrategy[str]:
    """Strings a client must not be able to break anything with (lone surrogates included)."""
    anything = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
    # Lone surrogates (JSON escapes them; UTF-8 cannot hold them), more often
    # than random text would have them.
    surrogates = st.sampled_from(["\ud800", "x\udfffy", "\udc00\ud800"])
    return weighted((3, st.sampled_from(HOSTILE_STRINGS)), (2, anything), (1, surrogates))


def hostile_json() -> st.SearchStrategy[Any]:
    """Any JSON value, of any type, often nonsensical for where it is put."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**40), max_value=10**40)
        | st.sampled_from([2**31, -(2**31) - 1, 2**63, 10**300])
        | st.floats(allow_nan=True, allow_infinity=True)
        | hostile_strings()
    )
    nested = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_strings(), inner, max_size=3),
        max_leaves=8,
    )
    return nested | st.integers(min_value=2, max_value=20_000).map(deep)


def _ids(seeded: Seeded) -> st.SearchStrategy[str]:
    return st.sampled_from(seeded.ids) | hostile_strings()


def json_for(type_: GraphQLInputType, seeded: Seeded) -> st.SearchStrategy[Any]:
    """A value for a variable of ``type_``: mostly well typed, with real ids,
    sometimes hostile anywhere inside."""
    return st.one_of(_typed(type_, seeded), _typed(type_, seeded), hostile_json())


def _typed(type_: GraphQLInputType, seeded: Seeded) -> st.SearchStrategy[Any]:
    if isinstance(type_, GraphQLNonNull):
        return _typed(type_.of_type, seeded)
    if isinstance(type_, GraphQLList):
        return st.lists(json_for(type_.of_type, seeded), max_size=3)
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from(list(type_.values)) | hostile_strings()
    if isinstance(type_, GraphQLInputObjectType):
        required = {n: json_for(f.type, seeded) for n, f in type_.fields.items() if graphql.is_required_input_field(f)}
        optional = {n: json_for(f.type, seeded) for n, f in type_.fields.items() if n not in required}
        fields = st.fixed_dictionaries(required, optional=optional)
        # Now and then a field the type does not have (its name is quoted back).
        unknown = st.builds(lambda d, k, v: {**d, k: v}, fields, hostile_strings(), hostile_json())
        return weighted((3, fields), (1, unknown))
    assert isinstance(type_, GraphQLScalarType), type_
    if type_.name == "ID":
        return _ids(seeded)
    if type_.name == "Int":
        return st.integers(min_value=-3, max_value=30) | st.integers()
    if type_.name == "Boolean":
        return st.booleans()
    if type_.name == "DateTime":
        return st.datetimes().map(lambda d: d.isoformat()) | hostile_strings()
    return hostile_strings()


# -- generated operations -------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    document: str
    variables: dict[str, Any] | None


@cache
def _id_literals(seeded: Seeded) -> st.SearchStrategy[graphql.ValueNode]:
    return _ids(seeded).map(lambda value: StringValueNode(value=value))


def generated_operations(seeded: Seeded) -> st.SearchStrategy[Generated]:
    """Queries and mutations from the schema, valid or with one violation,
    their arguments inline or as variables."""
    scalars = {"ID": _id_literals(seeded)}
    valid = from_schema(SCHEMA, custom_scalars=scalars, print_ast=_same, codec=None)
    invalid = from_schema(SCHEMA, custom_scalars=scalars, print_ast=_same, mode=Mode.NEGATIVE)
    documents: st.SearchStrategy[DocumentNode] = st.one_of(valid, valid, invalid)
    return st.tuples(documents, st.booleans(), st.data()).map(lambda drawn: _operation(seeded, *drawn))


def _same(document: DocumentNode) -> DocumentNode:
    return document


def _operation(seeded: Seeded, document: DocumentNode, as_variables: bool, data: st.DataObject) -> Generated:
    if not as_variables:
        return Generated(graphql.print_ast(document), None)
    document, types = _with_variables(document)
    variables: dict[str, Any] = {}
    for name, type_ in types.items():
        variables[name] = data.draw(json_for(type_, seeded), label=name)
    # Now and then a variable goes missing or an undeclared one comes along.
    if data.draw(st.booleans(), label="drop one") and variables:
        variables.pop(data.draw(st.sampled_from(sorted(variables))))
    if data.draw(st.booleans(), label="add one"):
        variables[data.draw(hostile_strings())] = data.draw(hostile_json())
    return Generated(graphql.print_ast(document), variables)


def _with_variables(document: DocumentNode) -> tuple[DocumentNode, dict[str, GraphQLInputType]]:
    """The document with every root field's arguments passed as variables."""
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    root = SCHEMA.get_root_type(operation.operation)
    assert root is not None
    types: dict[str, GraphQLInputType] = {}
    definitions: list[VariableDefinitionNode] = []
    selections = []
    for index, selection in enumerate(operation.selection_set.selections):
        if not isinstance(selection, FieldNode) or selection.name.value not in root.fields:
            selections.append(selection)
            continue
        arguments = []
        for name, argument in root.fields[selection.name.value].args.items():
            variable = f"v{index}_{name}"
            types[variable] = argument.type
            definitions.append(
                VariableDefinitionNode(
                    variable=VariableNode(name=NameNode(value=variable)),
                    type=graphql.parse_type(str(argument.type)),
                    directives=(),
                )
            )
            arguments.append(ArgumentNode(name=NameNode(value=name), value=VariableNode(name=NameNode(value=variable))))
        selections.append(
            FieldNode(
                alias=selection.alias,
                name=selection.name,
                arguments=tuple(arguments),
                directives=selection.directives,
                selection_set=selection.selection_set,
            )
        )
    rewritten = OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        variable_definitions=tuple(definitions),
        directives=operation.directives or (),
        selection_set=SelectionSetNode(selections=tuple(selections)),
    )
    return DocumentNode(definitions=(rewritten,)), types


def subscription_documents(seeded: Seeded) -> st.SearchStrategy[Generated]:
    """Subscriptions from the schema (hypothesis-graphql makes queries and
    mutations only: the Subscription type is generated as a query root and
    the operation turned into a subscription)."""
    return st.tuples(_subscriptions_as_queries(seeded), st.booleans(), st.data()).map(
        lambda drawn: _operation(seeded, *drawn)
    )


@cache
def _subscriptions_as_queries(seeded: Seeded) -> st.SearchStrategy[DocumentNode]:
    subscription = SCHEMA.subscription_type
    assert subscription is not None
    rooted = GraphQLSchema(query=subscription, types=list(SCHEMA.type_map.values()))
    scalars = {"ID": _id_literals(seeded)}
    return queries(rooted, custom_scalars=scalars, print_ast=_as_subscription, codec=None)


def _as_subscription(document: DocumentNode) -> DocumentNode:
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=OperationType.SUBSCRIPTION,
                variable_definitions=(),
                directives=(),
                selection_set=operation.selection_set,
            ),
        )
    )


# -- hand-made hostile documents --------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """A hand-made document; ``too_complex`` when the limits must refuse it."""

    document: str
    too_complex: bool
    variables: dict[str, Any] | None = None


_LEAVES = (
    "viewer { id }",
    "a: viewer { id }",
    "__typename",
    "s: __schema { queryType { name } }",
    "customers { edges { cursor } }",
)
_MAX_FIELDS = 1000  # settings' max_fields
_MAX_ALIASES = 50
_MAX_DEPTH = 12


def fragment_bomb(levels: int, fan_out: int, leaf: str, alias_spreads: bool = False) -> Hostile:
    """``query {...F0}``, each fragment spreading the next ``fan_out`` times."""
    fragments = []
    for i in range(levels):
        spreads = " ".join(f"x{j}: __typename ...F{i + 1}" if alias_spreads else f"...F{i + 1}" for j in range(fan_out))
        fragments.append(f"fragment F{i} on Query {{ {spreads} }}")
    fragments.append(f"fragment F{levels} on Query {{ {leaf} }}")
    # Each fragment's selections count once per time it is reached.
    expanded = fan_out**levels
    too_complex = expanded > _MAX_FIELDS or (leaf.startswith(("a:", "s:")) and expanded > _MAX_ALIASES)
    return Hostile("query { ...F0 } " + " ".join(fragments), too_complex and fan_out > 1)


@st.composite
def _fragment_bombs(draw: st.DrawFn) -> Hostile:
    return fragment_bomb(
        draw(st.integers(min_value=1, max_value=200)),
        draw(st.integers(min_value=1, max_value=4)),
        draw(st.sampled_from(_LEAVES)),
    )


_ALIASED = ("viewer { id }", "__typename", "__schema { queryType { name } }", "node(id: 1) { id }")


@st.composite
def _alias_floods(draw: st.DrawFn) -> Hostile:
    count = draw(st.integers(min_value=1, max_value=400))
    field = draw(st.sampled_from(_ALIASED))
    document = "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"
    return Hostile(document, count > _MAX_ALIASES)


@st.composite
def _deep_nesting(draw: st.DrawFn) -> Hostile:
    levels = draw(st.integers(min_value=1, max_value=400))
    kind = draw(st.sampled_from(["fields", "inline", "lists", "objects"]))
    if kind == "fields":
        return Hostile("{ viewer { " + "partner { " * levels + "id" + " }" * levels + " } }", levels + 2 > _MAX_DEPTH)
    if kind == "inline":
        # Inline fragments add no depth: valid at any nesting the parser takes.
        return Hostile("{ " + "... on Query { " * levels + "viewer { id }" + " }" * levels + " }", False)
    if kind == "lists":
        return Hostile("{ node(id: " + "[" * levels + "1" + "]" * levels + ") { id } }", False)
    value = "{a: " * levels + "1" + "}" * levels
    return Hostile(f"{{ customers(after: {value}) {{ edges {{ cursor }} }} }}", False)


_DIRECTIVES = (
    "@skip(if: true)",
    "@include(if: false)",
    "@skip(if: $b)",
    "@include(if: $b)",
    "@nope",
    "@skip",
    "@deprecated",
)


@st.composite
def _directives(draw: st.DrawFn) -> Hostile:
    def some() -> str:
        return " ".join(draw(st.lists(st.sampled_from(_DIRECTIVES), max_size=3)))

    document = (
        f"query Q($b: Boolean{draw(st.sampled_from(['', '!', ' = true', ' = 5']))}) {some()} "
        f"{{ viewer {some()} {{ id {some()} partner {some()} {{ name }} }} ...F {some()} "
        f"... {some()} {{ __typename {some()} }} }} "
        f"fragment F on Query {some()} {{ customers(first: 1) {some()} {{ edges {{ cursor }} }} }}"
    )
    variables = draw(st.none() | st.fixed_dictionaries({}, optional={"b": hostile_json()}))
    return Hostile(document, False, variables)


_VALID = (
    "query Products($c: ID!) { products(actingCustomer: $c) { id plan { id name price(interval: MONTHLY) "
    "{ amount } } totalLicenses } }"
)


@st.composite
def _broken_syntax(draw: st.DrawFn) -> Hostile:
    """A valid document cut short or with characters put in or taken out."""
    text = _VALID
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    junk = draw(st.text(st.characters(codec=None, exclude_categories=()), max_size=5))
    how = draw(st.sampled_from(["truncate", "insert", "delete"]))
    if how == "truncate":
        text = text[:cut]
    elif how == "insert":
        text = text[:cut] + junk + text[cut:]
    else:
        text = text[:cut] + text[cut + len(junk) + 1 :]
    return Hostile(text, False, draw(st.none() | st.fixed_dictionaries({"c": hostile_json()})))


_ODD = (
    "{ nope }",
    "{ viewer { nope } }",
    "{ viewer }",
    '{ __type(name: "Query") { fields { name args { name type { name ofType { name } } } } } }',
    '{ __type(name: "\\u0000") { name } }',
    "{ __schema { types { name fields(includeDeprecated: true) { name } } } }",
    "subscription { orderStatusChanged { cursor } }",
    "subscription { __typename }",
    "mutation { __typename }",
    "query A { viewer { id } } query A { viewer { id } }",
    "query { ...F } fragment F on Query { ...G } fragment G on Query { ...F }",
    "query { ...Missing }",
    "query { ... on Nope { id } }",
    "query { node(id: 1) { ... on Customer { name } ... on Order { status } ... on Viewer { role } } }",
    'query($a: [[[[ID!]!]]], $b: Nope, $c: Int = "x", $d: Int = $d) { viewer { id } }',
    "query($c: ID!) { a: products(actingCustomer: $c) { id } b: products(actingCustomer: 1) { id } }",
    "{ customers(first: -1) { edges { cursor } } }",
    '{ customers(first: 2147483647, after: "") { edges { cursor } pageInfo { endCursor } } }',
    '{ auditLog(first: 100, after: "\\u0000") { edges { cursor } } }',
    "\ufeff{ viewer { id } }",
    "# only a comment",
    "{ viewer { id } } }",
    '"""description""" query { viewer { id } }',
    "extend type Query { x: Int }",
    "type Query { x: Int }",
    "{ viewer { id(x: 1) } }",
    "{ a: viewer { id } a: customers { edges { cursor } } }",
    "{ viewer { id } viewer { role } viewer { partner { id } } }",
)


_TYPED_VARIABLES = (
    'query($i: BuyLicensesInput!) { licensePurchaseSummary(actingCustomer: "x", input: $i) { billingInterval } }',
    'query($s: OrderStatus) { orders(actingCustomer: "x", status: $s) { edges { cursor } } }',
    "query Q { viewer { id } }",
)


@st.composite
def _odd_variables(draw: st.DrawFn) -> Hostile:
    """Variables whose names, fields or values an error message quotes back."""
    keys = st.dictionaries(hostile_strings(), hostile_json(), max_size=3)
    variables = {"i": draw(keys), "s": draw(hostile_strings()), draw(hostile_strings()): draw(hostile_json())}
    return Hostile(draw(st.sampled_from(_TYPED_VARIABLES)), False, variables)


def hostile_documents() -> st.SearchStrategy[Hostile]:
    giant = st.integers(min_value=1_000, max_value=200_000).map(
        lambda n: Hostile('{ node(id: "' + "x" * n + '") { id } }', False)
    )
    many_operations = st.integers(min_value=1, max_value=400).map(
        lambda n: Hostile(" ".join(f"query Q{i} {{ viewer {{ id }} }}" for i in range(n)), n * 8 > 2000)
    )
    return st.one_of(
        _fragment_bombs(),
        _alias_floods(),
        _deep_nesting(),
        _directives(),
        _broken_syntax(),
        _odd_variables(),
        st.sampled_from(_ODD).map(lambda d: Hostile(d, False)),
        giant,
        many_operations,
    )

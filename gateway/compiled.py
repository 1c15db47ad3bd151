"""Queries and mutations run from a plan made once per distinct operation.

graphql-core's executor interprets the document on every request: it collects
each selection set's fields, looks up their definitions, decides how to
complete each value, builds resolver info for every field. For the documents a
dashboard sends again and again that work is the same every time, so it is
done once here (as graphql-jit does for GraphQL-JS): an operation becomes a
tree of planned fields, each knowing its response key, how to read its value
(a plain Strawberry attribute is read with ``getattr``; a resolver is called
with arguments coerced in advance when they use no variables) and how to
complete it (serialise a leaf, check a non-null, walk a list, run the planned
fields of an object type).

Execution follows the specification as graphql-core does: sibling fields of a
query run concurrently (so DataLoaders batch), mutation root fields serially,
a field error nulls the nearest nullable field and is reported once with its
path. Anything the planner does not handle (introspection, abstract types,
``@skip``/``@include``, fragment variables) raises :class:`Unsupported` and the
caller uses graphql-core for that operation; tests run both executors on the
same documents and compare the results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    is_leaf_type,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, Undefined, inspect
from graphql.type import GraphQLBoolean, GraphQLID, GraphQLInt, GraphQLString
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.relay.types import GlobalID
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryMaybe, StrawberryOptional

__all__ = ["OperationPlan", "Unsupported", "plan_operation", "run_plan"]

_MAX_VARIABLE_ERRORS = 50  # as graphql-core's default
# Strawberry's check: a fast path for the plain values most fields return.
_is_awaitable: Callable[[Any], bool] = optimized_is_awaitable


class Unsupported(Exception):
    """The operation uses something the planner leaves to graphql-core."""


class _Propagate(Exception):
    """A non-null position became null: its parent (or the nearest nullable
    ancestor) becomes null and reports ``error`` as graphql-core does."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


# A response path as a chain of tuples, (parent, key, typename), built without
# a Python-level call for each field; turned into graphql-core's Path only when
# a resolver's info or an error needs it.
PathChain = tuple[Any, str | int, str | None] | None
Complete = Callable[["_Run", Any, PathChain, "_Field"], Any]


@dataclass(eq=False, slots=True)
class _Field:
    key: str
    nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    field_def: GraphQLField | None  # None for __typename
    attribute: str | None  # read with getattr: a plain Strawberry field
    static_args: dict[str, Any] | None  # coerced once; None when they use variables
    non_null: bool
    complete: Complete
    # Whether reading and completing the value never awaits (plain attributes
    # down to the leaves): such fields skip every awaitable check.
    sync: bool
    typename: str | None = None  # __typename's answer
    direct: _DirectResolver | None = None


@dataclass(frozen=True, slots=True)
class _DirectResolver:
    """A Strawberry resolver called as Strawberry's own wrapper would call it
    (arguments converted to Python types; ``self``, ``root``/``parent`` and
    ``info`` injected), without the wrapper's per-call machinery, for fields
    with no field extension or permission (the gateway configures no
    exception handler, which would need that machinery)."""

    definition: Any  # strawberry.types.field.StrawberryField
    function: Callable[..., Any]
    pass_self: bool
    source_names: tuple[str, ...]  # `root` / `parent` parameters
    info_name: str | None
    static_kwargs: dict[str, Any] | None  # converted once: immutable scalar arguments
    # Converting the arguments is renaming them: (GraphQL name, Python name).
    renames: tuple[tuple[str, str], ...] | None


@dataclass(eq=False, slots=True)
class _Selection:
    type: GraphQLObjectType
    fields: list[_Field]

    @property
    def sync(self) -> bool:
        return all(field.sync for field in self.fields)


@dataclass(frozen=True, slots=True)
class OperationPlan:
    schema: GraphQLSchema
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root: _Selection
    serial: bool
    convert: _ArgumentConversion | None
    info_class: Any  # Strawberry's Info


# -- planning -------------------------------------------------------------------


def plan_operation(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> OperationPlan:
    """The plan of a validated document's operation; Unsupported for what graphql-core must run."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    operation: OperationDefinitionNode | None = None
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            if definition.variable_definitions:
                raise Unsupported("fragment variables")
            fragments[definition.name.value] = definition
        elif isinstance(definition, OperationDefinitionNode) and (
            operation_name is None or (definition.name is not None and definition.name.value == operation_name)
        ):
            if operation is not None:
                raise Unsupported("ambiguous operation")
            operation = definition
    if operation is None or operation.operation is OperationType.SUBSCRIPTION:
        raise Unsupported("no query or mutation")
    root_type = schema.get_root_type(operation.operation)
    if root_type is None:
        raise Unsupported("no root type")
    planner = _Planner(schema, fragments)
    root = planner.selection(root_type, [operation.selection_set])
    config = getattr((schema.extensions or {}).get("strawberry-definition"), "config", None)
    return OperationPlan(
        schema,
        operation,
        fragments,
        root,
        operation.operation is OperationType.MUTATION,
        planner.convert,
        getattr(config, "info_class", None),
    )


class _Planner:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.fragments = fragments
        strawberry_schema = (schema.extensions or {}).get("strawberry-definition")
        self.convert = _ArgumentConversion.of(strawberry_schema)

    def selection(self, type_: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]) -> _Selection:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(type_, selection_set, grouped, set())
        return _Selection(type_, [self._field(type_, key, nodes) for key, nodes in grouped.items()])

    def _collect(
        self,
        type_: GraphQLObjectType,
        selection_set: SelectionSetNode,
        into: dict[str, list[FieldNode]],
        seen: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if selection.directives:
                raise Unsupported("directives")
            if isinstance(selection, FieldNode):
                into.setdefault((selection.alias or selection.name).value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is None or selection.type_condition.name.value == type_.name:
                    self._collect(type_, selection.selection_set, into, seen)
                elif not self._is_other_object_type(selection.type_condition.name.value):
                    raise Unsupported("abstract type condition")
            else:
                assert isinstance(selection, FragmentSpreadNode)
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in seen or fragment is None:
                    continue
                seen.add(name)
                if fragment.type_condition.name.value == type_.name:
                    self._collect(type_, fragment.selection_set, into, seen)
                elif not self._is_other_object_type(fragment.type_condition.name.value):
                    raise Unsupported("abstract type condition")

    def _is_other_object_type(self, name: str) -> bool:
        # On an object type, a condition naming another object type selects nothing.
        return isinstance(self.schema.get_type(name), GraphQLObjectType)

    def _field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> _Field:
        name = nodes[0].name.value
        if name == "__typename":
            return _Field(key, nodes, parent, None, None, {}, True, _complete_typename, True, typename=parent.name)
        if name.startswith("__"):
            raise Unsupported("introspection")
        field_def = parent.fields[name]
        static_args = None if _uses_variables(nodes[0]) else get_argument_values(field_def, nodes[0], None)
        attribute = _plain_attribute(field_def)
        complete, sync = self._completer(field_def.type, nodes)
        return _Field(
            key,
            nodes,
            parent,
            field_def,
            attribute,
            static_args,
            isinstance(field_def.type, GraphQLNonNull),
            complete,
            sync and attribute is not None,
            direct=self._direct(field_def, static_args),
        )

    def _direct(self, field_def: GraphQLField, static_args: dict[str, Any] | None) -> _DirectResolver | None:
        definition: Any = (field_def.extensions or {}).get("strawberry-definition")
        resolver = getattr(definition, "base_resolver", None)
        if self.convert is None or resolver is None or definition.extensions or definition.permission_classes:
            return None
        static_kwargs = None
        if static_args is not None and _immutable(static_args):
            static_kwargs = self.convert(static_args, definition.arguments)
        return _DirectResolver(
            definition,
            resolver.wrapped_func,
            resolver.self_parameter is not None,
            tuple(p.name for p in (resolver.root_parameter, resolver.parent_parameter) if p is not None),
            resolver.info_parameter.name if resolver.info_parameter is not None else None,
            static_kwargs,
            self.convert.renames(definition.arguments),
        )

    def _completer(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> tuple[Complete, bool]:
        """How to complete a value of ``type_``, and whether that never awaits."""
        if isinstance(type_, GraphQLNonNull):
            inner = type_.of_type
            if is_leaf_type(inner):
                return _non_null_leaf(inner), True
            complete, sync = self._completer(inner, nodes)
            return (_non_null_sync(complete) if sync else _non_null(complete)), sync
        if isinstance(type_, GraphQLList):
            item = type_.of_type
            complete, sync = self._completer(item, nodes)
            return _list(complete, isinstance(item, GraphQLNonNull), sync), sync
        if is_leaf_type(type_):
            return _leaf(type_), True
        if isinstance(type_, GraphQLObjectType):
            sets = [node.selection_set for node in nodes if node.selection_set is not None]
            selection = self.selection(type_, sets)
            return _object(selection), selection.sync
        raise Unsupported("abstract type")


@dataclass(frozen=True, slots=True)
class _ArgumentConversion:
    """Strawberry's conversion of coerced arguments to the resolver's Python types."""

    strawberry_schema: Any

    @classmethod
    def of(cls, strawberry_schema: Any) -> _ArgumentConversion | None:
        converter = getattr(strawberry_schema, "schema_converter", None)
        if getattr(converter, "scalar_registry", None) is None or getattr(strawberry_schema, "config", None) is None:
            return None
        return cls(strawberry_schema)

    def renames(self, arguments: Any) -> tuple[tuple[str, str], ...] | None:
        """(GraphQL name, Python name) of each argument, when converting them
        is only renaming (every one a scalar, which Strawberry passes on as
        graphql-core coerced it); None otherwise."""
        registry = self.strawberry_schema.schema_converter.scalar_registry
        names = []
        for argument in arguments:
            type_ = argument.type
            if isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
                type_ = type_.of_type
            if type_ is GlobalID or not _hashable(type_) or type_ not in registry:
                return None
            names.append((self.strawberry_schema.config.name_converter.from_argument(argument), argument.python_name))
        return tuple(names)

    def __call__(self, values: dict[str, Any], arguments: Any) -> dict[str, Any]:
        schema = self.strawberry_schema
        return convert_arguments(
            values, arguments, scalar_registry=schema.schema_converter.scalar_registry, config=schema.config
        )


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _immutable(values: dict[str, Any]) -> bool:
    return all(value is None or isinstance(value, str | int | float | bool | Enum) for value in values.values())


def _plain_attribute(field_def: GraphQLField) -> str | None:
    """The Python attribute behind a field with no resolver, extension or permission."""
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if definition is None or definition.base_resolver is not None:
        return None
    if definition.extensions or definition.permission_classes or definition.directives:
        return None
    name: str = definition.python_name
    return name


def _uses_variables(node: FieldNode) -> bool:
    def walk(value: ValueNode) -> bool:
        if isinstance(value, VariableNode):
            return True
        if isinstance(value, ListValueNode):
            return any(walk(v) for v in value.values)
        if isinstance(value, ObjectValueNode):
            return any(walk(f.value) for f in value.fields)
        return False

    return any(walk(argument.value) for argument in node.arguments or ())


def _as_list(path: PathChain) -> list[str | int]:
    keys: list[str | int] = []
    while path is not None:
        keys.append(path[1])
        path = path[0]
    keys.reverse()
    return keys


def _as_path(path: PathChain) -> Path | None:
    """graphql-core's Path for a chain (what resolver info carries)."""
    if path is None:
        return None
    return Path(_as_path(path[0]), path[1], path[2])


# -- completing values --------------------------------------------------------------


def _complete_typename(_run: _Run, value: Any, _path: PathChain, _field: _Field) -> Any:
    return value


def _coercer(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    """The leaf's output coercion, with graphql-core's check that it yields a
    value, and a shortcut for values already of the scalar's own Python type."""
    coerce = type_.coerce_output_value

    def checked(value: Any) -> Any:
        coerced = coerce(value)
        if coerced is Undefined or coerced is None:
            raise TypeError(
                f"Expected `{inspect(type_)}.coerce_output_value({inspect(value)})` to return non-nullable value,"
                f" returned: {inspect(coerced)}"
            )
        return coerced

    if type_ is GraphQLString or type_ is GraphQLID:
        return lambda value: value if type(value) is str else checked(value)
    if type_ is GraphQLBoolean:
        return lambda value: value if type(value) is bool else checked(value)
    if type_ is GraphQLInt:
        return lambda value: value if type(value) is int and _INT_MIN <= value <= _INT_MAX else checked(value)
    return checked


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _leaf(type_: GraphQLLeafType) -> Complete:
    coerce = _coercer(type_)

    def complete(_run: _Run, value: Any, _path: PathChain, _field: _Field) -> Any:
        return None if value is None else coerce(value)

    return complete


def _non_null_leaf(type_: GraphQLLeafType) -> Complete:
    coerce = _coercer(type_)

    def complete(_run: _Run, value: Any, _path: PathChain, field: _Field) -> Any:
        if value is None:
            raise _null_error(field)
        return coerce(value)

    return complete


def _non_null_sync(inner: Complete) -> Complete:
    def complete(run: _Run, value: Any, path: PathChain, field: _Field) -> Any:
        if value is None:
            raise _null_error(field)
        completed = inner(run, value, path, field)
        if completed is None:
            raise _null_error(field)
        return completed

    return complete


def _non_null(inner: Complete) -> Complete:
    def complete(run: _Run, value: Any, path: PathChain, field: _Field) -> Any:
        if value is None:
            raise _null_error(field)
        completed = inner(run, value, path, field)
        if _is_awaitable(completed):
            return _non_null_later(completed, field)
        if completed is None:
            raise _null_error(field)
        return completed

    return complete


async def _non_null_later(completing: Awaitable[Any], field: _Field) -> Any:
    completed = await completing
    if completed is None:
        raise _null_error(field)
    return completed


def _null_error(field: _Field) -> GraphQLError:
    name = f"{field.parent_type.name}.{field.nodes[0].name.value}"
    return GraphQLError(f"Cannot return null for non-nullable field {name}.")


def _object(selection: _Selection) -> Complete:
    def complete(run: _Run, value: Any, path: PathChain, _field: _Field) -> Any:
        return None if value is None else run.object(selection, value, path)

    return complete


def _list(item: Complete, items_non_null: bool, sync: bool) -> Complete:
    def complete(run: _Run, value: Any, path: PathChain, field: _Field) -> Any:
        if value is None:
            return None
        if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
            raise GraphQLError(
                f"Expected Iterable, but did not find one for field"
                f" '{field.parent_type.name}.{field.nodes[0].name.value}'."
            )
        results: list[Any] = []
        pending: list[tuple[int, Awaitable[Any], PathChain]] = []
        for index, element in enumerate(value):
            item_path = (path, index, None)
            try:
                completed = item(run, element, item_path, field)
            except Exception as error:
                completed = run.failed(error, field.nodes, item_path, items_non_null)
            if not sync and _is_awaitable(completed):
                pending.append((len(results), completed, item_path))
                completed = None
            results.append(completed)
        if pending:
            return _list_later(run, results, pending, field, items_non_null)
        return results

    return complete


async def _list_later(
    run: _Run,
    results: list[Any],
    pending: list[tuple[int, Awaitable[Any], PathChain]],
    field: _Field,
    items_non_null: bool,
) -> list[Any]:
    guarded = [run.guarded(awaitable, field.nodes, path, items_non_null) for _, awaitable, path in pending]
    for (index, _, _), value in zip(pending, await _settle(guarded), strict=True):
        results[index] = value
    return results


def _abandon(awaitables: Any) -> None:
    """Close coroutines that will never be awaited (their object is null anyway)."""
    for awaitable in awaitables:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()


async def _settle(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    """Every awaitable's value; the first to raise (a non-null position gone
    null) cancels the others, which settle before it propagates, as in graphql-core."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    done, rest = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failures = [error for task in tasks if task in done and (error := task.exception()) is not None]
    if not failures:
        return [task.result() for task in tasks]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    raise failures[0]


# -- running --------------------------------------------------------------------------


class _Run:
    """One execution of a plan."""

    def __init__(self, plan: OperationPlan, context: Any, variables: VariableValues) -> None:
        self.plan = plan
        self.context = context
        self.variables = variables
        self.errors: list[GraphQLError] = []
        self.nulled: set[PathChain] = set()

    def failed(self, error: BaseException, nodes: list[FieldNode], path: PathChain, non_null: bool) -> Any:
        """The value of a position whose completion raised ``error``: null,
        with the error reported there; or, for a non-null position, raised on
        to null its parent."""
        if isinstance(error, _Propagate):
            located = error.error
        elif isinstance(error, Exception):
            located = located_error(error, nodes, _as_list(path))
        else:
            raise error
        if non_null:
            raise _Propagate(located)
        self.report(located, path)
        return None

    def report(self, error: GraphQLError, position: PathChain) -> None:
        """Report ``error`` for the nulled ``position``, unless it or one of its
        ancestors already was (as graphql-core's CollectedErrors)."""
        nulled = self.nulled
        if None in nulled:
            return
        ancestor = position
        while ancestor is not None:
            if ancestor in nulled:
                return
            ancestor = ancestor[0]
        nulled.add(position)
        self.errors.append(error)

    def object(self, selection: _Selection, source: Any, path: PathChain) -> Any:
        result: dict[str, Any] = {}
        pending: list[tuple[_Field, Awaitable[Any], PathChain]] = []
        typename = selection.type.name
        for field in selection.fields:
            field_path = (path, field.key, typename)
            try:
                if field.sync:
                    assert field.attribute is not None or field.typename is not None
                    value = (
                        field.typename
                        if field.attribute is None
                        else field.complete(self, getattr(source, field.attribute), field_path, field)
                    )
                else:
                    value = self._field(field, source, field_path)
                    if _is_awaitable(value):
                        pending.append((field, value, field_path))
                        value = None
            except Exception as error:
                try:
                    value = self.failed(error, field.nodes, field_path, field.non_null)
                except _Propagate:
                    _abandon(awaitable for _, awaitable, _ in pending)
                    raise
            result[field.key] = value
        if pending:
            return self._object_later(result, pending)
        return result

    async def _object_later(
        self, result: dict[str, Any], pending: list[tuple[_Field, Awaitable[Any], PathChain]]
    ) -> Any:
        guarded = [self.guarded(awaitable, field.nodes, path, field.non_null) for field, awaitable, path in pending]
        for (field, _, _), value in zip(pending, await _settle(guarded), strict=True):
            result[field.key] = value
        return result

    async def guarded(self, awaitable: Awaitable[Any], nodes: list[FieldNode], path: PathChain, non_null: bool) -> Any:
        """The position's value once awaited, or null with its error (see :meth:`failed`)."""
        try:
            return await awaitable
        except Exception as error:
            return self.failed(error, nodes, path, non_null)

    def _field(self, field: _Field, source: Any, path: PathChain) -> Any:
        if field.typename is not None:
            return field.typename
        if field.attribute is not None:
            value = getattr(source, field.attribute)
        else:
            value = self._resolve(field, source, path)
            if _is_awaitable(value):
                return self._field_later(field, value, path)
        return field.complete(self, value, path, field)

    async def _field_later(self, field: _Field, resolving: Awaitable[Any], path: PathChain) -> Any:
        value = await resolving
        completed = field.complete(self, value, path, field)
        if _is_awaitable(completed):
            completed = await completed
        return completed

    def _resolve(self, field: _Field, source: Any, path: PathChain) -> Any:
        field_def = field.field_def
        assert field_def is not None and field_def.resolve is not None
        direct = field.direct
        if direct is not None and direct.static_kwargs is not None and direct.info_name is None:
            return direct.function(*((source,) if direct.pass_self else ()), **direct.static_kwargs)
        args = field.static_args
        if args is None:
            args = get_argument_values(field_def, field.nodes[0], self.variables)
        info = self._info(field, field_def, path)
        if direct is None:
            return field_def.resolve(source, info, **args)
        if direct.static_kwargs is not None:
            kwargs = dict(direct.static_kwargs)
        elif direct.renames is not None:
            kwargs = {python: args[name] for name, python in direct.renames if name in args}
        else:
            kwargs = self.plan.convert(args, direct.definition.arguments)  # type: ignore[misc]
        for name in direct.source_names:
            kwargs[name] = source
        if direct.info_name is not None:
            kwargs[direct.info_name] = self.plan.info_class(_raw_info=info, _field=direct.definition)
        return direct.function(*((source,) if direct.pass_self else ()), **kwargs)

    def _info(self, field: _Field, field_def: GraphQLField, path: PathChain) -> GraphQLResolveInfo[Any]:
        plan = self.plan
        # What Strawberry's executor hands its resolvers (variables as a plain dict).
        return GraphQLResolveInfo(
            field.nodes[0].name.value,
            field.nodes,
            field_def.type,
            field.parent_type,
            _as_path(path),  # type: ignore[arg-type]
            plan.schema,
            plan.fragments,
            None,
            plan.operation,
            self.variables.coerced,  # type: ignore[arg-type]
            self.context,
            _is_awaitable,  # type: ignore[arg-type]
            None,
            None,  # type: ignore[arg-type]
        )

    async def serially(self, selection: _Selection) -> Any:
        """A mutation's root fields, one after the other."""
        result: dict[str, Any] = {}
        for field in selection.fields:
            path = (None, field.key, selection.type.name)
            try:
                value = self._field(field, None, path)
                if _is_awaitable(value):
                    value = await value
            except Exception as error:
                value = self.failed(error, field.nodes, path, field.non_null)
            result[field.key] = value
        return result


_NO_VARIABLES = VariableValues({}, {})


async def run_plan(plan: OperationPlan, context: Any, variables: dict[str, Any] | None) -> ExecutionResult:
    """Execute a plan for one request: its context and its raw variables."""
    definitions = plan.operation.variable_definitions
    if definitions:
        coerced = get_variable_values(plan.schema, definitions, variables or {}, max_errors=_MAX_VARIABLE_ERRORS)
        if isinstance(coerced, list):
            return ExecutionResult(None, coerced)
    else:
        coerced = _NO_VARIABLES
    run = _Run(plan, context, coerced)
    try:
        if plan.serial:
            data = await run.serially(plan.root)
        else:
            data = run.object(plan.root, None, None)
            if _is_awaitable(data):
                data = await data
    except _Propagate as propagated:
        run.report(propagated.error, None)
        data = None
    return ExecutionResult(data, run.errors or None)

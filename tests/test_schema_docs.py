"""The schema is its own manual (GraphiQL's Docs pane): every type, field,
argument, input field and enum value is described, and every userErrors code
the billing code can return is named where clients look."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
)

from gateway.schema import build_schema

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _schema() -> GraphQLSchema:
    return build_schema()._schema


def undescribed(schema: GraphQLSchema) -> list[str]:
    missing = []
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or name in BUILT_IN:
            continue
        if not (type_.description or "").strip():
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                if not (field.description or "").strip():
                    missing.append(f"{name}.{field_name}")
                missing += [
                    f"{name}.{field_name}({arg_name}:)"
                    for arg_name, arg in field.args.items()
                    if not (arg.description or "").strip()
                ]
        elif isinstance(type_, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in type_.fields.items() if not (field.description or "").strip()]
        elif isinstance(type_, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in type_.values.items() if not (value.description or "").strip()]
        else:
            assert isinstance(type_, GraphQLScalarType | GraphQLUnionType), name
    return missing


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    assert undescribed(_schema()) == []


def test_date_time_names_its_specification() -> None:
    date_time = _schema().type_map["DateTime"]
    assert isinstance(date_time, GraphQLScalarType)
    assert date_time.specified_by_url == "https://scalars.graphql.org/andimarek/date-time"
    assert (
        'scalar DateTime @specifiedBy(url: "https://scalars.graphql.org/andimarek/date-time")'
        in (REPO / "schema.graphql").read_text()
    )


def user_error_codes() -> set[str]:
    """Every code the billing code puts in a UserError."""
    codes = set()
    for path in (REPO / "billing").glob("*.py"):
        codes |= set(re.findall(r'UserError\(\s*"([A-Z_]+)"', path.read_text()))
    return codes


def test_every_user_error_code_is_listed_on_user_error_and_in_the_readme() -> None:
    codes = user_error_codes()
    assert {"CARD_DECLINED", "INVALID_QUANTITY", "PAYMENT_METHOD_NOT_FOUND"} <= codes  # the scan works
    user_error = _schema().type_map["UserError"]
    assert isinstance(user_error, GraphQLObjectType)
    listed = user_error.fields["code"].description or ""
    readme = (REPO / "README.md").read_text()
    assert sorted(c for c in codes if c not in listed) == []
    assert sorted(c for c in codes if f"`{c}`" not in readme) == []

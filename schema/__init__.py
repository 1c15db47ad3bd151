"""The GraphQL surface: types, inputs and payloads (composed in ``gateway.schema``)."""

# The enums first: a type annotation resolved before they are registered would
# get a second, undescribed definition of the same enum.
from schema import enums as _enums  # noqa: F401

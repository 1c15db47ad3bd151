"""The GraphQL surface: types, inputs and payloads (composed in ``gateway.schema``)."""

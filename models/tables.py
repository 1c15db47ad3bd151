"""The tables behind the SQLModel classes, as SQLAlchemy Core sees them.

Hot paths build statements from these (see ``models.database.Query``) rather
than from the ORM classes, so no row is ever hydrated into a model object.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table on SQLModel.metadata

__all__ = [
    "api_tokens",
    "audit_entries",
    "customers",
    "gateway_secrets",
    "order_events",
    "order_lines",
    "orders",
    "partners",
    "payment_methods",
    "plans",
    "processed_webhook_events",
    "products",
    "sandbox_payment_methods",
    "sandbox_payments",
    "users",
]

api_tokens: Table = SQLModel.metadata.tables["api_tokens"]
audit_entries: Table = SQLModel.metadata.tables["audit_entries"]
customers: Table = SQLModel.metadata.tables["customers"]
gateway_secrets: Table = SQLModel.metadata.tables["gateway_secrets"]
order_events: Table = SQLModel.metadata.tables["order_events"]
order_lines: Table = SQLModel.metadata.tables["order_lines"]
orders: Table = SQLModel.metadata.tables["orders"]
partners: Table = SQLModel.metadata.tables["partners"]
payment_methods: Table = SQLModel.metadata.tables["payment_methods"]
plans: Table = SQLModel.metadata.tables["plans"]
processed_webhook_events: Table = SQLModel.metadata.tables["processed_webhook_events"]
products: Table = SQLModel.metadata.tables["products"]
sandbox_payment_methods: Table = SQLModel.metadata.tables["sandbox_payment_methods"]
sandbox_payments: Table = SQLModel.metadata.tables["sandbox_payments"]
users: Table = SQLModel.metadata.tables["users"]

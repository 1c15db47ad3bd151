"""Unsettled orders found by index: a product's, a customer's.

Every purchase asks whether an order that touches the same product (a
renewal, a plan change) is still unsettled. Those checks named the product or
the customer and then read every order it ever had, so each purchase cost
more than the one before; with the status beside the product and the
customer in an index they read only the unsettled ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

* ``orders_product_status`` on ``(product_id, status)``.
* ``orders_customer_status`` on ``(customer_id, status)``.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("orders_product_status", "orders", ["product_id", "status"], unique=False)
    op.create_index("orders_customer_status", "orders", ["customer_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("orders_customer_status", table_name="orders")
    op.drop_index("orders_product_status", table_name="orders")

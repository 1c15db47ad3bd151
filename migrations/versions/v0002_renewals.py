"""Renewals: stored billing periods, product status, renewal orders.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30


Products keep their period in ``current_period_start``/``current_period_end``
instead of deriving it from ``period_anchor`` and the clock. Existing products
are given the period their anchor gives them at migration time: the one a
partner saw as "current" until now. Orders gain the period a RENEWAL order pays
for and its attempt number, unique per product and period.

Runs on SQLite and PostgreSQL. Spell column types with plain SQLAlchemy
types (not the models' classes) so this file keeps meaning what it meant; for
the same reason the period arithmetic below is this revision's own copy of
``billing.periods`` as it was when written.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRODUCT_RENEWAL_CHECK = (
    "status IN ('ACTIVE', 'PAST_DUE', 'CANCELED') AND renewal_attempts >= 0 "
    "AND (scheduled_licenses IS NULL OR scheduled_licenses >= 1)"
)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _period_at(anchor: datetime, months: int, now: datetime) -> tuple[datetime, datetime]:
    """The period of ``months`` months from ``anchor`` containing ``now`` (the first if ``now`` precedes it)."""
    n = 0
    if now >= anchor:
        n = max(0, ((now.year - anchor.year) * 12 + now.month - anchor.month) // months - 1)
        while _add_months(anchor, (n + 1) * months) <= now:
            n += 1
    return _add_months(anchor, n * months), _add_months(anchor, (n + 1) * months)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; the gateway stores UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _backfill_periods() -> None:
    products = sa.table(
        "products",
        sa.column("id", sa.String()),
        sa.column("billing_interval", sa.String()),
        sa.column("period_anchor", sa.DateTime(timezone=True)),
        sa.column("current_period_start", sa.DateTime(timezone=True)),
        sa.column("current_period_end", sa.DateTime(timezone=True)),
        sa.column("next_renewal_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(sa.select(products.c.id, products.c.billing_interval, products.c.period_anchor)).all()
    for product_id, interval, anchor in rows:
        start, end = _period_at(_utc(anchor), 1 if interval == "MONTHLY" else 12, now)
        bind.execute(
            products.update()
            .where(products.c.id == product_id)
            .values(current_period_start=start, current_period_end=end, next_renewal_at=end)
        )


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_start", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("renewal_attempt", sa.Integer(), nullable=True))
    op.create_index("orders_renewal_attempt", "orders", ["product_id", "period_start", "renewal_attempt"], unique=True)

    # Expand, backfill, then tighten: existing rows need their period first.
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=10), server_default=sa.text("'ACTIVE'"), nullable=False)
        )
        batch_op.add_column(sa.Column("cancel_at_period_end", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("scheduled_licenses", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("renewal_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("next_renewal_at", sa.DateTime(timezone=True), nullable=True))
    _backfill_periods()
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.alter_column("current_period_start", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("current_period_end", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_check_constraint("product_renewal", _PRODUCT_RENEWAL_CHECK)
    op.create_index("products_renewal_due", "products", ["next_renewal_at"], unique=False)


def downgrade() -> None:
    op.drop_index("products_renewal_due", table_name="products")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint("product_renewal", type_="check")
        batch_op.drop_column("next_renewal_at")
        batch_op.drop_column("renewal_attempts")
        batch_op.drop_column("scheduled_licenses")
        batch_op.drop_column("cancel_at_period_end")
        batch_op.drop_column("status")
        batch_op.drop_column("current_period_end")
        batch_op.drop_column("current_period_start")

    op.drop_index("orders_renewal_attempt", table_name="orders")
    if op.get_bind().dialect.name == "sqlite":
        # Dropping columns copies the table, which order_lines and order_events reference.
        op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("renewal_attempt")
        batch_op.drop_column("period_end")
        batch_op.drop_column("period_start")

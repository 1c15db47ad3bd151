"""Hold the line: token expiry and last use, one primary card, audit reads, secrets.

Tokens expire and record their last use; one primary card per customer; the
audit trail's reads; the gateway's own secrets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

* ``api_tokens.expires_at`` (null: never) and ``api_tokens.last_used_at``.
* ``payment_methods_one_primary``: a partial unique index, at most one row per
  customer with ``is_primary`` and no ``removed_at``. Duplicates left by the
  race it closes are cleaned first: the newest primary card stays primary.
* ``audit_entries``: indexes for reading newest first, a partner's or one
  customer's (replacing the plain index on ``partner_id``).
* ``gateway_secrets``: secrets generated on first start (the cursor key).

Runs on SQLite and PostgreSQL. Spell column types with plain SQLAlchemy
types (not the models' classes) so this file keeps meaning what it meant.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE_PRIMARY = "is_primary AND removed_at IS NULL"


def _keep_only_the_newest_primary() -> None:
    methods = sa.table(
        "payment_methods",
        sa.column("id", sa.String()),
        sa.column("customer_id", sa.String()),
        sa.column("is_primary", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("removed_at", sa.DateTime(timezone=True)),
    )
    newer = methods.alias("newer")
    a_newer_primary = (
        sa.select(sa.literal(1))
        .where(
            newer.c.customer_id == methods.c.customer_id,
            newer.c.is_primary.is_(sa.true()),
            newer.c.removed_at.is_(None),
            sa.or_(
                newer.c.created_at > methods.c.created_at,
                sa.and_(newer.c.created_at == methods.c.created_at, newer.c.id > methods.c.id),
            ),
        )
        .exists()
    )
    op.execute(
        methods.update()
        .where(methods.c.is_primary.is_(sa.true()), methods.c.removed_at.is_(None), a_newer_primary)
        .values(is_primary=sa.false())
    )


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))

    _keep_only_the_newest_primary()
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.create_index(
            "payment_methods_one_primary",
            ["customer_id"],
            unique=True,
            postgresql_where=sa.text(_ACTIVE_PRIMARY),
            sqlite_where=sa.text(_ACTIVE_PRIMARY),
        )

    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_partner_id")
        batch_op.create_index("audit_entries_partner_newest", ["partner_id", "id"], unique=False)
        batch_op.create_index("audit_entries_customer_newest", ["partner_id", "customer_id", "id"], unique=False)

    op.create_table(
        "gateway_secrets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("gateway_secrets")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("audit_entries_customer_newest")
        batch_op.drop_index("audit_entries_partner_newest")
        batch_op.create_index("ix_audit_entries_partner_id", ["partner_id"], unique=False)
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.drop_index("payment_methods_one_primary")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")

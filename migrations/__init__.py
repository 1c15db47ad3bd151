"""Alembic migrations of the gateway's database (SQLite and PostgreSQL).

``migrations.runner`` runs them to head at startup and from
``partner-billing migrate``; ``alembic.ini`` at the repository root points the
``alembic`` command line here for writing new revisions.
"""

from pathlib import Path

__all__ = ["SCRIPT_LOCATION"]

SCRIPT_LOCATION = Path(__file__).resolve().parent

"""Announce every change of credentials (auth_token, person) on PostgreSQL, for the API
workers' credential caches (``mes_core.persistence.auth_cache``). SQLite: nothing.

Revision ID: 0003_auth_change_notify
Revises: 0002_quality_oee_labour_erp
Create Date: 2026-11-25 02:10:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_auth_change_notify"
down_revision: str | Sequence[str] | None = "0002_quality_oee_labour_erp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("auth_token", "person")


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    # Statement level: one notification per statement; delivered at commit, and PostgreSQL
    # folds identical notifications of one transaction into one.
    op.execute(
        "CREATE FUNCTION mestwin_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('mestwin_auth_changed', TG_TABLE_NAME); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mestwin_auth_changed()"
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS mestwin_auth_changed()")

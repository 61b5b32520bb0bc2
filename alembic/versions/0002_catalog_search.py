"""Full-text search over the resource catalog, made by hand (autogenerate cannot model it).

PostgreSQL: a GIN expression index over ``to_tsvector('simple', title || ' ' || summary)``.
SQLite: an FTS5 table kept in step by triggers. Both use unstemmed tokens, so simple terms give the
same results on both backends. ``alembic/env.py`` hides these objects from autogenerate.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UPGRADE = [
    # A content-storing FTS5 table: SQLite 3.40 has no contentless_delete, and the catalog is small.
    """CREATE VIRTUAL TABLE resources_fts USING fts5(
           sponsor_id UNINDEXED, resource_id UNINDEXED, title, summary, tokenize='unicode61')""",
    """CREATE TRIGGER resources_fts_ai AFTER INSERT ON resources BEGIN
           INSERT INTO resources_fts (sponsor_id, resource_id, title, summary)
           VALUES (new.sponsor_id, new.id, new.title, new.summary);
       END""",
    """CREATE TRIGGER resources_fts_au AFTER UPDATE OF title, summary ON resources BEGIN
           DELETE FROM resources_fts WHERE resource_id = old.id;
           INSERT INTO resources_fts (sponsor_id, resource_id, title, summary)
           VALUES (new.sponsor_id, new.id, new.title, new.summary);
       END""",
    """CREATE TRIGGER resources_fts_ad AFTER DELETE ON resources BEGIN
           DELETE FROM resources_fts WHERE resource_id = old.id;
       END""",
]

POSTGRES_UPGRADE = [
    """CREATE INDEX ix_resources_search ON resources
       USING gin (to_tsvector('simple', title || ' ' || summary))""",
]


def upgrade() -> None:
    statements = SQLITE_UPGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_UPGRADE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("resources_fts_ai", "resources_fts_au", "resources_fts_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS resources_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_resources_search")

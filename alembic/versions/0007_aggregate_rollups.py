"""Monthly aggregate rollups: stored per-collaborative period totals, invalidated by triggers.

Tables ``aggregate_series`` (a stored series and its refresh generation), ``aggregate_cells``
(its period totals and median team value) and ``aggregate_changes`` (series whose stored cells
may be out of date). Triggers append to ``aggregate_changes`` whenever an input of a series
changes: data points (inserted, updated, deleted; COPY included), a collaborative's goal line,
a measure's current version or a definition, a team's collaborative. PostgreSQL runs one
statement-level trigger per data-point statement over its transition table (one change row per
series and transaction, appended: concurrent batches never wait on each other); SQLite, which
has only row-level triggers, one per data point that keeps one change row per series and renews
its id. Every series that already has data starts out changed, so it is computed when first read.
Autogenerate sees neither triggers nor functions, so ``alembic check`` stays quiet about them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 02:59:20.366622
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# ruff: noqa: S608 - the statements are assembled from this module's own constants, no input

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANGE_COLUMNS = "(sponsor_id, id, collaborative_id, measure_id, stratum)"

# The series (collaborative, measure, stratum) that have data, for the keys a trigger names.
SERIES_OF_MEASURE = """
    SELECT DISTINCT dp.sponsor_id, t.collaborative_id, dp.measure_id, dp.stratum
    FROM data_points dp
    JOIN teams t ON t.sponsor_id = dp.sponsor_id AND t.id = dp.team_id
    WHERE dp.sponsor_id = {row}.sponsor_id AND dp.measure_id = {row}.{measure}"""


def _postgres_points_function(name: str, points: str) -> str:
    """A statement-level trigger function marking the series of the data points in ``points``
    (a FROM item over the statement's transition tables)."""
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tx bigint := pg_current_xact_id()::text::bigint;
    BEGIN
        INSERT INTO aggregate_changes {CHANGE_COLUMNS[:-1]}, transaction_id)
        SELECT k.sponsor_id, gen_random_uuid(), k.collaborative_id, k.measure_id, k.stratum, tx
        FROM (SELECT DISTINCT p.sponsor_id, t.collaborative_id, p.measure_id, p.stratum
              FROM {points}
              JOIN teams t ON t.sponsor_id = p.sponsor_id AND t.id = p.team_id) AS k
        -- One row per series and transaction (a transaction of many statements, executemany
        -- included): no reader sees the row before the transaction's last statement commits.
        WHERE NOT EXISTS (
            SELECT 1 FROM aggregate_changes c
            WHERE c.sponsor_id = k.sponsor_id AND c.measure_id = k.measure_id
              AND c.collaborative_id = k.collaborative_id AND c.stratum = k.stratum
              AND c.transaction_id = tx);
        RETURN NULL;
    END $$"""


POSTGRES_UPGRADE = [
    _postgres_points_function("aggregate_changes_from_points", "changed_points p"),
    # An update marks the series before and after (a point's key does not change today).
    _postgres_points_function(
        "aggregate_changes_from_point_updates",
        """(SELECT sponsor_id, team_id, measure_id, stratum FROM changed_points
                    UNION SELECT sponsor_id, team_id, measure_id, stratum FROM old_points) p""",
    ),
    """CREATE TRIGGER data_points_aggregate_insert AFTER INSERT ON data_points
       REFERENCING NEW TABLE AS changed_points
       FOR EACH STATEMENT EXECUTE FUNCTION aggregate_changes_from_points()""",
    """CREATE TRIGGER data_points_aggregate_update AFTER UPDATE ON data_points
       REFERENCING OLD TABLE AS old_points NEW TABLE AS changed_points
       FOR EACH STATEMENT EXECUTE FUNCTION aggregate_changes_from_point_updates()""",
    """CREATE TRIGGER data_points_aggregate_delete AFTER DELETE ON data_points
       REFERENCING OLD TABLE AS changed_points
       FOR EACH STATEMENT EXECUTE FUNCTION aggregate_changes_from_points()""",
    # A goal line, a measure's current version or a definition: every series of the measure
    # (rare administrative changes; a scan of the measure's points is fine).
    f"""CREATE FUNCTION aggregate_changes_from_measure() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        changed record;
        measure uuid;
    BEGIN
        IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
        IF TG_TABLE_NAME = 'measures' THEN measure := changed.id;
        ELSE measure := changed.measure_id; END IF;
        INSERT INTO aggregate_changes {CHANGE_COLUMNS}
        SELECT k.sponsor_id, gen_random_uuid(), k.collaborative_id, k.measure_id, k.stratum
        FROM (SELECT DISTINCT dp.sponsor_id, t.collaborative_id, dp.measure_id, dp.stratum
              FROM data_points dp
              JOIN teams t ON t.sponsor_id = dp.sponsor_id AND t.id = dp.team_id
              WHERE dp.sponsor_id = changed.sponsor_id AND dp.measure_id = measure) AS k;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER collaborative_measures_aggregate
       AFTER INSERT OR UPDATE OF goal OR DELETE ON collaborative_measures
       FOR EACH ROW EXECUTE FUNCTION aggregate_changes_from_measure()""",
    """CREATE TRIGGER measures_aggregate AFTER UPDATE OF current_version ON measures
       FOR EACH ROW EXECUTE FUNCTION aggregate_changes_from_measure()""",
    """CREATE TRIGGER measure_versions_aggregate
       AFTER UPDATE OF multiplier, improvement_direction ON measure_versions
       FOR EACH ROW EXECUTE FUNCTION aggregate_changes_from_measure()""",
    f"""CREATE FUNCTION aggregate_changes_from_team() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO aggregate_changes {CHANGE_COLUMNS}
        SELECT k.sponsor_id, gen_random_uuid(), k.collaborative_id, k.measure_id, k.stratum
        FROM (SELECT DISTINCT dp.sponsor_id, c.collaborative_id, dp.measure_id, dp.stratum
              FROM data_points dp
              CROSS JOIN (VALUES (OLD.collaborative_id), (NEW.collaborative_id))
                  AS c(collaborative_id)
              WHERE dp.sponsor_id = NEW.sponsor_id AND dp.team_id = NEW.id) AS k;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER teams_aggregate AFTER UPDATE OF collaborative_id ON teams
       FOR EACH ROW EXECUTE FUNCTION aggregate_changes_from_team()""",
]

SQLITE_ID = "lower(hex(randomblob(16)))"
"""A random UUID as SQLAlchemy's ``Uuid`` stores it on SQLite (32 hex digits)."""


def _sqlite_point_trigger(
    event: str, row: str, *, name: str | None = None, when: str | None = None
) -> str:
    """SQLite runs the trigger per data point: it keeps one change row per series and gives it
    a new id on every write, so that a refresh that read the old id deletes nothing (writers
    on SQLite take turns, so the shared row costs no waiting)."""
    series = f"""sponsor_id = {row}.sponsor_id AND measure_id = {row}.measure_id
              AND stratum = {row}.stratum
              AND collaborative_id = (SELECT t.collaborative_id FROM teams t
                                      WHERE t.sponsor_id = {row}.sponsor_id
                                        AND t.id = {row}.team_id)"""
    name = name or f"data_points_aggregate_{event.lower()}"
    condition = f" WHEN {when}" if when else ""
    return f"""CREATE TRIGGER {name} AFTER {event} ON data_points{condition}
    BEGIN
        UPDATE aggregate_changes SET id = {SQLITE_ID} WHERE {series};
        INSERT INTO aggregate_changes {CHANGE_COLUMNS}
        SELECT {row}.sponsor_id, {SQLITE_ID}, t.collaborative_id, {row}.measure_id, {row}.stratum
        FROM teams t WHERE t.sponsor_id = {row}.sponsor_id AND t.id = {row}.team_id
          AND NOT EXISTS (SELECT 1 FROM aggregate_changes WHERE {series});
    END"""


def _sqlite_measure_trigger(name: str, event: str, row: str, measure: str) -> str:
    return f"""CREATE TRIGGER {name} AFTER {event}
    BEGIN
        INSERT INTO aggregate_changes {CHANGE_COLUMNS}
        SELECT k.sponsor_id, {SQLITE_ID}, k.collaborative_id, k.measure_id, k.stratum
        FROM ({SERIES_OF_MEASURE.format(row=row, measure=measure)}) AS k;
    END"""


SQLITE_UPGRADE = [
    _sqlite_point_trigger("INSERT", "NEW"),
    _sqlite_point_trigger("UPDATE", "NEW"),
    _sqlite_point_trigger("DELETE", "OLD"),
    # An update that moves a point to another key marks the series it left too.
    _sqlite_point_trigger(
        "UPDATE",
        "OLD",
        name="data_points_aggregate_update_old",
        when="OLD.team_id IS NOT NEW.team_id OR OLD.measure_id IS NOT NEW.measure_id"
        " OR OLD.stratum IS NOT NEW.stratum",
    ),
    _sqlite_measure_trigger(
        "collaborative_measures_aggregate_insert",
        "INSERT ON collaborative_measures",
        "NEW",
        "measure_id",
    ),
    _sqlite_measure_trigger(
        "collaborative_measures_aggregate_update",
        "UPDATE OF goal ON collaborative_measures",
        "NEW",
        "measure_id",
    ),
    _sqlite_measure_trigger(
        "collaborative_measures_aggregate_delete",
        "DELETE ON collaborative_measures",
        "OLD",
        "measure_id",
    ),
    _sqlite_measure_trigger(
        "measures_aggregate", "UPDATE OF current_version ON measures", "NEW", "id"
    ),
    _sqlite_measure_trigger(
        "measure_versions_aggregate",
        "UPDATE OF multiplier, improvement_direction ON measure_versions",
        "NEW",
        "measure_id",
    ),
    f"""CREATE TRIGGER teams_aggregate AFTER UPDATE OF collaborative_id ON teams
    BEGIN
        INSERT INTO aggregate_changes {CHANGE_COLUMNS}
        SELECT k.sponsor_id, {SQLITE_ID}, k.collaborative_id, k.measure_id, k.stratum
        FROM (SELECT DISTINCT dp.sponsor_id, c.collaborative_id, dp.measure_id, dp.stratum
              FROM data_points dp
              CROSS JOIN (SELECT OLD.collaborative_id AS collaborative_id
                          UNION SELECT NEW.collaborative_id) AS c
              WHERE dp.sponsor_id = NEW.sponsor_id AND dp.team_id = NEW.id) AS k;
    END""",
]

POSTGRES_TRIGGERS = [
    ("data_points_aggregate_insert", "data_points"),
    ("data_points_aggregate_update", "data_points"),
    ("data_points_aggregate_delete", "data_points"),
    ("collaborative_measures_aggregate", "collaborative_measures"),
    ("measures_aggregate", "measures"),
    ("measure_versions_aggregate", "measure_versions"),
    ("teams_aggregate", "teams"),
]
POSTGRES_FUNCTIONS = [
    "aggregate_changes_from_points",
    "aggregate_changes_from_point_updates",
    "aggregate_changes_from_measure",
    "aggregate_changes_from_team",
]
SQLITE_TRIGGERS = [
    "data_points_aggregate_insert",
    "data_points_aggregate_update",
    "data_points_aggregate_delete",
    "data_points_aggregate_update_old",
    "collaborative_measures_aggregate_insert",
    "collaborative_measures_aggregate_update",
    "collaborative_measures_aggregate_delete",
    "measures_aggregate",
    "measure_versions_aggregate",
    "teams_aggregate",
]


def upgrade() -> None:
    op.create_table(
        "aggregate_changes",
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_aggregate_changes_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_aggregate_changes")),
    )
    with op.batch_alter_table("aggregate_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_aggregate_changes_series",
            ["sponsor_id", "measure_id", "collaborative_id", "stratum"],
            unique=False,
        )
    op.create_table(
        "aggregate_series",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            name=op.f("fk_aggregate_series_sponsor_id_collaborative_id_collaboratives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "measure_id"],
            ["measures.sponsor_id", "measures.id"],
            name=op.f("fk_aggregate_series_sponsor_id_measure_id_measures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id",
            "collaborative_id",
            "measure_id",
            "stratum",
            name=op.f("pk_aggregate_series"),
        ),
    )
    op.create_table(
        "aggregate_cells",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("teams_reporting", sa.Integer(), nullable=False),
        sa.Column("numerator", sa.BigInteger(), nullable=True),
        sa.Column("denominator", sa.BigInteger(), nullable=True),
        sa.Column("value_sum", sa.Float(), nullable=True),
        sa.Column("teams_with_goal", sa.Integer(), nullable=False),
        sa.Column("teams_meeting_goal", sa.Integer(), nullable=False),
        sa.Column("median", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id", "measure_id", "stratum"],
            [
                "aggregate_series.sponsor_id",
                "aggregate_series.collaborative_id",
                "aggregate_series.measure_id",
                "aggregate_series.stratum",
            ],
            name="fk_aggregate_cells_series",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id",
            "collaborative_id",
            "measure_id",
            "stratum",
            "period",
            name=op.f("pk_aggregate_cells"),
        ),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UPGRADE if sqlite else POSTGRES_UPGRADE:
        op.execute(statement)
    new_id = SQLITE_ID if sqlite else "gen_random_uuid()"
    op.execute(
        f"""INSERT INTO aggregate_changes {CHANGE_COLUMNS}
        SELECT k.sponsor_id, {new_id}, k.collaborative_id, k.measure_id, k.stratum
        FROM (SELECT DISTINCT dp.sponsor_id, t.collaborative_id, dp.measure_id, dp.stratum
              FROM data_points dp
              JOIN teams t ON t.sponsor_id = dp.sponsor_id AND t.id = dp.team_id) AS k"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        for trigger, table in POSTGRES_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in POSTGRES_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("aggregate_cells")
    op.drop_table("aggregate_series")
    with op.batch_alter_table("aggregate_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_aggregate_changes_series")
    op.drop_table("aggregate_changes")

"""indexed lists

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 12:00:00.000000

Lists, totals and searches that do not read the whole jobs table:

- an index per listing filter, each ending with the listing's order (created_at, number);
  retention's own partial index over the jobs whose files are still there; the input key;
  tasks by state and end time;
- ``job_counts``: +1/-1 rows appended by triggers on ``jobs`` (storage/counts.py reads and
  folds them), seeded here with the jobs already stored;
- the search index over job names: an FTS5 trigram table on SQLite, a pg_trgm GIN index on
  ``lower(name)`` on PostgreSQL. Where the database lacks them (SQLite built without FTS5,
  PostgreSQL without the pg_trgm extension or the right to create it) the migration says why
  and goes on: search then reads the table, as before.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("cyclotron.storage.migrate")

# name -> columns; fixed here: the migration must not change with the code.
JOB_INDEXES = {
    "ix_jobs_created": ["created_at", "number"],
    "ix_jobs_owner_created": ["owner_id", "created_at", "number"],
    "ix_jobs_state_created": ["state", "created_at", "number"],
    "ix_jobs_owner_state_created": ["owner_id", "state", "created_at", "number"],
    "ix_jobs_service_state_created": ["service", "state", "created_at", "number"],
    "ix_jobs_owner_ended": ["owner_id", "ended_at", "created_at", "number"],
    "ix_jobs_input_hash": ["input_hash"],
}
UNCLEANED = "cleaned_at IS NULL"
COUNT_COLUMNS = "owner_id, service, state, yaptide, n"

SQLITE_COUNT_TRIGGERS = [
    """CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO job_counts (owner_id, service, state, yaptide, n)
        VALUES (NEW.owner_id, NEW.service, NEW.state, NEW.yaptide_id IS NOT NULL, 1);
    END""",
    """CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
        INSERT INTO job_counts (owner_id, service, state, yaptide, n)
        VALUES (OLD.owner_id, OLD.service, OLD.state, OLD.yaptide_id IS NOT NULL, -1);
    END""",
    """CREATE TRIGGER jobs_count_update AFTER UPDATE OF owner_id, service, state, yaptide_id
    ON jobs WHEN OLD.owner_id IS NOT NEW.owner_id OR OLD.service IS NOT NEW.service
        OR OLD.state IS NOT NEW.state OR (OLD.yaptide_id IS NULL) <> (NEW.yaptide_id IS NULL)
    BEGIN
        INSERT INTO job_counts (owner_id, service, state, yaptide, n)
        VALUES (OLD.owner_id, OLD.service, OLD.state, OLD.yaptide_id IS NOT NULL, -1);
        INSERT INTO job_counts (owner_id, service, state, yaptide, n)
        VALUES (NEW.owner_id, NEW.service, NEW.state, NEW.yaptide_id IS NOT NULL, 1);
    END""",
]
SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE jobs_search USING fts5("
    "name, content='jobs', content_rowid='number', tokenize='trigram')",
    "INSERT INTO jobs_search(jobs_search) VALUES ('rebuild')",
    """CREATE TRIGGER jobs_search_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO jobs_search(rowid, name) VALUES (NEW.number, NEW.name);
    END""",
    """CREATE TRIGGER jobs_search_delete AFTER DELETE ON jobs BEGIN
        INSERT INTO jobs_search(jobs_search, rowid, name) VALUES ('delete', OLD.number, OLD.name);
    END""",
    """CREATE TRIGGER jobs_search_update AFTER UPDATE OF name ON jobs BEGIN
        INSERT INTO jobs_search(jobs_search, rowid, name) VALUES ('delete', OLD.number, OLD.name);
        INSERT INTO jobs_search(rowid, name) VALUES (NEW.number, NEW.name);
    END""",
]
POSTGRES_COUNT_TRIGGERS = [
    """CREATE FUNCTION cyclotron_job_counts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            INSERT INTO job_counts (owner_id, service, state, yaptide, n)
            VALUES (OLD.owner_id, OLD.service, OLD.state, OLD.yaptide_id IS NOT NULL, -1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO job_counts (owner_id, service, state, yaptide, n)
            VALUES (NEW.owner_id, NEW.service, NEW.state, NEW.yaptide_id IS NOT NULL, 1);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER jobs_count_insert_delete AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION cyclotron_job_counts()""",
    """CREATE TRIGGER jobs_count_update AFTER UPDATE OF owner_id, service, state, yaptide_id
    ON jobs FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id
        OR OLD.service IS DISTINCT FROM NEW.service OR OLD.state IS DISTINCT FROM NEW.state
        OR (OLD.yaptide_id IS NULL) <> (NEW.yaptide_id IS NULL))
    EXECUTE FUNCTION cyclotron_job_counts()""",
]
POSTGRES_SEARCH = "CREATE INDEX ix_jobs_name_trgm ON jobs USING gin (lower(name) gin_trgm_ops)"


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_jobs_state_service", table_name="jobs")
    op.drop_index("ix_jobs_owner", table_name="jobs")
    for name, columns in JOB_INDEXES.items():
        op.create_index(name, "jobs", columns)
    op.create_index(
        "ix_jobs_uncleaned_end",
        "jobs",
        ["service", "ended_at"],
        sqlite_where=sa.text(UNCLEANED),
        postgresql_where=sa.text(UNCLEANED),
    )
    op.drop_index("ix_tasks_state", table_name="tasks")
    op.create_index("ix_tasks_state_ended", "tasks", ["state", "ended_at"])

    op.create_table(
        "job_counts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("yaptide", sa.Boolean(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_counts_key", "job_counts", ["owner_id", "service", "state", "yaptide"])
    op.execute(
        f"INSERT INTO job_counts ({COUNT_COLUMNS}) "
        "SELECT owner_id, service, state, yaptide_id IS NOT NULL, COUNT(*) FROM jobs "
        "GROUP BY owner_id, service, state, yaptide_id IS NOT NULL"
    )
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_COUNT_TRIGGERS:
            op.execute(statement)
        _sqlite_search(bind)
    else:
        for statement in POSTGRES_COUNT_TRIGGERS:
            op.execute(statement)
        _postgres_search(bind)


def _sqlite_search(bind: sa.Connection) -> None:
    try:
        bind.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x, tokenize='trigram')"
        )
        bind.exec_driver_sql("DROP TABLE temp.fts5_probe")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "job search will read the whole jobs table: this SQLite has no FTS5 trigram "
            "tokenizer (%s)",
            exc.orig,
        )
        return
    for statement in SQLITE_SEARCH:
        op.execute(statement)


def _postgres_search(bind: sa.Connection) -> None:
    available = bind.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    ).scalar()
    if available is None:
        log.warning(
            "job search will read the whole jobs table: the pg_trgm extension is not installed "
            "on this PostgreSQL server (Debian: postgresql-contrib)"
        )
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "job search will read the whole jobs table: the pg_trgm extension could not be "
            "created (%s); a database owner can run CREATE EXTENSION pg_trgm, then %s",
            str(exc.orig).strip(),
            POSTGRES_SEARCH,
        )
        return
    op.execute(POSTGRES_SEARCH)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("jobs_search_insert", "jobs_search_delete", "jobs_search_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS jobs_search")
        for trigger in ("jobs_count_insert", "jobs_count_delete", "jobs_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        op.execute("DROP INDEX IF EXISTS ix_jobs_name_trgm")
        op.execute("DROP TRIGGER IF EXISTS jobs_count_insert_delete ON jobs")
        op.execute("DROP TRIGGER IF EXISTS jobs_count_update ON jobs")
        op.execute("DROP FUNCTION IF EXISTS cyclotron_job_counts()")
    op.drop_index("ix_job_counts_key", table_name="job_counts")
    op.drop_table("job_counts")
    op.drop_index("ix_tasks_state_ended", table_name="tasks")
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.drop_index("ix_jobs_uncleaned_end", table_name="jobs")
    for name in JOB_INDEXES:
        op.drop_index(name, table_name="jobs")
    op.create_index("ix_jobs_owner", "jobs", ["owner_id"])
    op.create_index("ix_jobs_state_service", "jobs", ["state", "service"])

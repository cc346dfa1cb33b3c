"""Storage: SQLAlchemy 2 tables, Alembic migrations, repositories (they flush, never commit)."""

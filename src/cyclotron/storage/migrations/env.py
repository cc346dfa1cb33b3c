"""Alembic environment: runs on the connection Cyclotron hands over (never reads a URL itself)."""

from __future__ import annotations

from alembic import context

from cyclotron.storage.search import include_object
from cyclotron.storage.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_object=include_object,  # the search index is made by hand (migration 0007)
)
with context.begin_transaction():
    context.run_migrations()

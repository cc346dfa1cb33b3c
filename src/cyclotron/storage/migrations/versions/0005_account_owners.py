"""account owners

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 12:00:00.000000

YAPTIDE accounts and API-key users no longer share owner ids: an account's jobs are owned by
``1_000_000_000 + account id`` (domain.records.ACCOUNT_OWNERS), so a key made with
``--user-id 1`` no longer sees account 1's simulations. Jobs of the YAPTIDE face move over.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACCOUNT_OWNERS = 1_000_000_000  # fixed here: the migration must not change with the code


def upgrade() -> None:
    op.execute(
        f"UPDATE jobs SET owner_id = owner_id + {ACCOUNT_OWNERS} "
        f"WHERE yaptide_id IS NOT NULL AND owner_id < {ACCOUNT_OWNERS}"
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE jobs SET owner_id = owner_id - {ACCOUNT_OWNERS} "
        f"WHERE yaptide_id IS NOT NULL AND owner_id >= {ACCOUNT_OWNERS}"
    )

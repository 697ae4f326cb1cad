"""board: a covering index for the public board's counts; the shared per-address rate limit

The board's counts (`/ideer`, per status and focus area, public ideas only) read the index
`ix_idea_board_count` alone (status, focus_area, created_at, id, hidden_at, published_at)
instead of every row of the table, and a page filtered by both status and focus area walks it
in the board's order (a rare combination no longer walks every idea of the status).
`rate_hit` holds the web chat's requests per client address and minute, so several workers
share one allowance.

Revision ID: 0004_board
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004_board"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_idea_board_count", "idea",
                    ["status", "focus_area", "created_at", "id", "hidden_at", "published_at"],
                    unique=False)
    op.create_table(
        "rate_hit",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "bucket"),
    )


def downgrade() -> None:
    op.drop_table("rate_hit")
    op.drop_index("ix_idea_board_count", table_name="idea")

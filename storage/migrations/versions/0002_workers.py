"""several workers: sending lease on handled updates, the shared send pace, job ticks

Revision ID: 0002_workers
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_workers"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_update") as batch:
        batch.add_column(sa.Column("sending_until", sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
        batch.create_index("ix_processed_update_sending", ["sending_until"])
    # Answers stored before this revision and never confirmed: free to take at once.
    op.execute("UPDATE processed_update SET sending_until = at "
               "WHERE delivered_at IS NULL AND replies IS NOT NULL AND replies <> '[]'")
    op.create_table(
        "send_pace",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("slot", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "job_run",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("ran_at", sa.Float(), nullable=False),
        sa.Column("due", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("job_run")
    op.drop_table("send_pace")
    with op.batch_alter_table("processed_update") as batch:
        batch.drop_index("ix_processed_update_sending")
        batch.drop_column("sending_until")

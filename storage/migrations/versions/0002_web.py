"""web: the public board's indexes, hiding and publishing ideas, the generated app secrets

Revision ID: 0002_web
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_web"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254),
                                   nullable=True))
    with op.batch_alter_table("idea") as batch:
        batch.add_column(sa.Column("hidden_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("hidden_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
    # Ideas already there were public before: they stay so under KOMINN_PUBLISH=after-review.
    op.execute("UPDATE idea SET published_at = created_at")
    op.create_index("ix_idea_created_id", "idea", ["created_at", "id"], unique=False)
    op.create_index("ix_idea_area_created", "idea", ["focus_area", "created_at"], unique=False)
    op.create_table(
        "app_secret",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("app_secret")
    with op.batch_alter_table("person") as batch:
        batch.drop_column("email")
    op.drop_index("ix_idea_area_created", table_name="idea")
    op.drop_index("ix_idea_created_id", table_name="idea")
    with op.batch_alter_table("idea") as batch:
        batch.drop_column("published_at")
        batch.drop_column("hidden_reason")
        batch.drop_column("hidden_at")

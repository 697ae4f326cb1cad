"""one head again: the web channel, the moderators' dedup decisions and the workers' leases

Three migrations were written side by side on 0001; this joins them, so `kominn db upgrade`
and the start-up check see one head. Nothing changes in the schema.

Revision ID: 0003
Revises: 0002_dedup, 0002_web, 0002_workers
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | Sequence[str] | None = ("0002_dedup", "0002_web", "0002_workers")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""matcher: the police force whose area covers each local authority

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-04 09:00:00.000000

* matcher.local_authorities.force_code: the territorial police force whose area takes in the
  LA (police areas are made of whole LAs, so one force per LA). A report's force then says
  which schools are near the child: the matcher gives their pupils most of the prior
  (services/matcher/domain.py area_priors). NULL until an admin says; a force's default LA
  always counts as in its area.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0019"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("local_authorities", sa.Column("force_code", sa.String(length=10)),
                  schema="matcher")


def downgrade() -> None:
    op.drop_column("local_authorities", "force_code", schema="matcher")

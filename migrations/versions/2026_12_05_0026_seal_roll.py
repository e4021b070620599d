"""matcher: the school rolls sealed at rest

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-05 09:00:00.000000

A roll row's child data (UPN, names, former name, birth date, gender, address, postcode) is
sealed whole from this release (services/matcher/roll.py) in the new `child` column: the
token 'dk1.roll-YYYY.<...>' under the roll's key class (one data key per year, never
crypto-shredded), AAD 'matcher.pupils:<id>:child'. Its clear columns are then empty, so
given_name, family_name and date_of_birth may be NULL. `upn_hash` is the UPN's keyed hash
(HMAC-SHA256 under the keystore's lookup key, never in the database), what SQL looks a UPN
up by. No data are rewritten here: rows stored before are clear and read as they are until
`daybreak reseal` seals them, as revision 0021 did for the notifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0023"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_NOW_OPTIONAL = ("given_name", "family_name", "date_of_birth")
COMMENTS = {
    "child": ("child data sealed whole: a token under the roll key (clear columns before "
              "`daybreak reseal`)"),
    "upn_hash": "HMAC-SHA256 of the UPN under the keystore's lookup key (hex)",
}


def upgrade() -> None:
    op.add_column("pupils", sa.Column("child", sa.Text()), schema="matcher")
    op.add_column("pupils", sa.Column("upn_hash", sa.String(length=64)), schema="matcher")
    for column in _NOW_OPTIONAL:
        op.alter_column("pupils", column, nullable=True, schema="matcher")
    op.create_index("ix_pupils_upn_hash", "pupils", ["upn_hash"], schema="matcher")
    # rows stored before sealing are still looked up by their clear UPN until resealed
    op.create_index("ix_pupils_upn_clear", "pupils", ["upn"], schema="matcher",
                    postgresql_where=sa.text("upn <> ''"))
    for column, comment in COMMENTS.items():
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON COLUMN matcher.pupils.{column} IS '{quoted}'")


def downgrade() -> None:
    # only a roll stored clear comes back whole: reimport the rolls after a downgrade
    op.execute("DELETE FROM matcher.pupils WHERE child IS NOT NULL")
    op.drop_index("ix_pupils_upn_clear", table_name="pupils", schema="matcher")
    op.drop_index("ix_pupils_upn_hash", table_name="pupils", schema="matcher")
    for column in _NOW_OPTIONAL:
        op.alter_column("pupils", column, nullable=False, schema="matcher")
    op.drop_column("pupils", "upn_hash", schema="matcher")
    op.drop_column("pupils", "child", schema="matcher")

"""child data sealed at rest: the columns that hold it say so

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-04 09:00:00.000000

The child data the matcher and the notifier store is sealed per row from this release
(services/common/sealed_columns.py): a JSONB column keeps its type and holds
{"sealed": "dk1.<month>.<...>"}, beside the keys SQL reads (an incident's ids, force, type
and times; a resolution's outcome and schools); a TEXT column of free text holds the sealed
token itself. The AAD is '<schema>.<table>:<primary key>:<column>'. No type changes and no
data are rewritten here: rows stored before are clear and read as they are until
`daybreak reseal` seals them. This revision only documents, on each column, what it holds,
for whoever reads the schema or a backup.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0018"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_WHOLE = "child data sealed whole: {\"sealed\": token} (clear before `daybreak reseal`)"
_INCIDENT = ("incident facts: ids, force, type, times and disclosure fields clear; the summary "
             "sealed under \"sealed\"")
_TEXT = "free text that may name the child: a sealed token (clear before `daybreak reseal`)"
COMMENTS = {
    ("matcher", "reviews", "child"): _WHOLE,
    ("matcher", "reviews", "candidates"): _WHOLE,
    ("matcher", "reviews", "incident"): _INCIDENT,
    ("matcher", "reviews", "resolution"): ("outcome and schools clear; the officers' reasons "
                                           "and hand-overs sealed under \"sealed\""),
    ("notifier", "notifications", "incident"): _INCIDENT,
    ("notifier", "notifications", "action_taken"): _TEXT,
    ("notifier", "notification_children", "child"): _WHOLE,
    ("notifier", "notification_actions", "note"): _TEXT,
}


def upgrade() -> None:
    for (schema, table, column), comment in COMMENTS.items():
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON COLUMN {schema}.{table}.{column} IS '{quoted}'")


def downgrade() -> None:
    for schema, table, column in COMMENTS:
        op.execute(f"COMMENT ON COLUMN {schema}.{table}.{column} IS NULL")

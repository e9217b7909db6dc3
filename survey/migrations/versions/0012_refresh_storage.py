"""refresh storage: duration and flagged-response indexes; the stored statistics unlogged, with room for updates

A refresh rewrote the speeder flags by reading every response; an index on (wave, version,
duration) finds the responses between the old and the new threshold by range (and gives SQLite
the median by walking to the middle entries).
A partial index of the flagged responses that the statistics count finds the ones whose flag
changed since they were counted without reading every response of the wave.

The statistics of ``aggregate_*`` (migration 0010) are derived data that ``flask analyze --full``
rebuilds. On PostgreSQL they become UNLOGGED (no WAL for the tens of thousands of rows a refresh
updates and the million a full build writes; after a crash the server empties all of them, the
state included, so the next refresh rebuilds them), and the two tables a refresh updates in place
keep a third of each page free (fillfactor 70), so an update stays on its page without a new
index entry (HOT) and the primary key does not swell with dead entries between vacuums.
aggregate_choice and aggregate_flagged lose their foreign key to aggregate_state: checking it for
each of a full build's half million rows cost a second; the code deletes a state's rows itself.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

FLAGGED_COUNTED = ("(flag_speeder OR flag_straightline OR flag_repeat_device) "
                   "AND score IS NOT NULL AND area_id IS NOT NULL")
# Referencing tables first: a logged table may not reference an unlogged one.
AGGREGATES = ('aggregate_flagged', 'aggregate_choice', 'aggregate_score', 'aggregate_cell', 'aggregate_state')
UPDATED_IN_PLACE = ('aggregate_choice', 'aggregate_score')
NO_FOREIGN_KEY = ('aggregate_choice', 'aggregate_flagged')


def upgrade() -> None:
    # The two big tables of a state lose their foreign key to it (survey/aggregates.py deletes their rows).
    for table in NO_FOREIGN_KEY:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'fk_{table}_state_id_aggregate_state', type_='foreignkey')
    op.create_index('ix_response_wave_version_duration', 'response',
                    ['wave_id', 'questionnaire_version_id', 'duration_s'], unique=False)
    op.create_index('ix_response_flagged', 'response', ['wave_id', 'questionnaire_version_id', 'id'], unique=False,
                    postgresql_where=sa.text(FLAGGED_COUNTED), sqlite_where=sa.text(FLAGGED_COUNTED))
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in AGGREGATES:
        op.execute(f'ALTER TABLE {table} SET UNLOGGED')
    for table in UPDATED_IN_PLACE:
        op.execute(f'ALTER TABLE {table} SET (fillfactor = 70)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in UPDATED_IN_PLACE:
            op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
        for table in reversed(AGGREGATES):
            op.execute(f'ALTER TABLE {table} SET LOGGED')
    for table in NO_FOREIGN_KEY:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(f'fk_{table}_state_id_aggregate_state', 'aggregate_state', ['state_id'], ['id'],
                                     ondelete='CASCADE')
    op.drop_index('ix_response_flagged', table_name='response')
    op.drop_index('ix_response_wave_version_duration', table_name='response')

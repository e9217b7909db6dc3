"""response attributes: the questionnaire's own weighting attributes in one JSON column

The four fixed columns (sex, age_band, resident_6m, grade_band) become entries of
``response.attributes`` ({attribute name: choice code}, unanswered ones left out), so a
questionnaire may mark any question as a weighting attribute. The backfill is one UPDATE in SQL.
Downgrading puts the four old attributes back in their columns; any other attribute is lost.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD_COLUMNS = (('sex', 8), ('age_band', 16), ('resident_6m', 4), ('grade_band', 16))


def upgrade() -> None:
    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attributes', sa.JSON().with_variant(JSONB(), 'postgresql'),
                                      server_default='{}', nullable=False))
    pairs = ', '.join(f"'{name}', {name}" for name, _ in OLD_COLUMNS)
    any_set = ' OR '.join(f'{name} IS NOT NULL' for name, _ in OLD_COLUMNS)
    if op.get_bind().dialect.name == 'postgresql':
        built = f'jsonb_strip_nulls(jsonb_build_object({pairs}))'
    else:  # SQLite: a merge patch onto {} leaves out the members whose value is null
        built = f"json_patch('{{}}', json_object({pairs}))"
    op.execute(f'UPDATE response SET attributes = {built} WHERE {any_set}')
    # SQLite: ALTER TABLE ... DROP COLUMN (3.35+) in place. Recreating the table instead would copy
    # every response, and dropping the old one would cascade to the answers (foreign keys are on).
    with op.batch_alter_table('response', schema=None, recreate='never') as batch_op:
        for name, _ in OLD_COLUMNS:
            batch_op.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table('response', schema=None) as batch_op:
        for name, length in OLD_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    postgresql = op.get_bind().dialect.name == 'postgresql'
    values = ', '.join(
        f"{name} = substr(attributes ->> '{name}', 1, {length})" if postgresql
        else f"{name} = substr(json_extract(attributes, '$.{name}'), 1, {length})"
        for name, _ in OLD_COLUMNS
    )
    op.execute(f'UPDATE response SET {values}')
    with op.batch_alter_table('response', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('attributes')

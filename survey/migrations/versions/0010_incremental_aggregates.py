"""incremental aggregates: per-cell sufficient statistics of responses up to a watermark

The tables are derived data: ``flask analyze --full`` (or the first refresh) fills them from the
responses, each later refresh adds only the responses after the watermark. Downgrading drops them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('aggregate_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wave_id', sa.Integer(), nullable=False),
    sa.Column('questionnaire_code', sa.String(length=64), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('watermark', ID, nullable=False),
    sa.Column('responses', ID, nullable=False),
    sa.Column('id_sum', ID, nullable=False),
    sa.Column('pending', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['wave_id'], ['wave.id'], name=op.f('fk_aggregate_state_wave_id_wave'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aggregate_state')),
    sa.UniqueConstraint('wave_id', 'questionnaire_code', name=op.f('uq_aggregate_state_wave_id'))
    )
    op.create_table('aggregate_cell',
    sa.Column('id', ID, nullable=False),
    sa.Column('state_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('attrs', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['state_id'], ['aggregate_state.id'], name=op.f('fk_aggregate_cell_state_id_aggregate_state'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aggregate_cell')),
    sa.UniqueConstraint('state_id', 'area_id', 'attrs', name=op.f('uq_aggregate_cell_state_id'))
    )
    op.create_table('aggregate_score',
    sa.Column('state_id', sa.Integer(), nullable=False),
    sa.Column('cell_id', ID, nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('n', ID, nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('total_sq', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['state_id'], ['aggregate_state.id'], name=op.f('fk_aggregate_score_state_id_aggregate_state'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_id', 'cell_id', 'version_id', 'channel', 'flagged', name=op.f('pk_aggregate_score'))
    )
    op.create_table('aggregate_choice',
    sa.Column('state_id', sa.Integer(), nullable=False),
    sa.Column('cell_id', ID, nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=False),
    sa.Column('choice_code', sa.String(length=32), nullable=False),
    sa.Column('n', ID, nullable=False),
    sa.ForeignKeyConstraint(['state_id'], ['aggregate_state.id'], name=op.f('fk_aggregate_choice_state_id_aggregate_state'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_id', 'cell_id', 'version_id', 'flagged', 'item_code', 'choice_code', name=op.f('pk_aggregate_choice'))
    )
    op.create_table('aggregate_flagged',
    sa.Column('state_id', sa.Integer(), nullable=False),
    sa.Column('response_id', ID, nullable=False),
    sa.ForeignKeyConstraint(['state_id'], ['aggregate_state.id'], name=op.f('fk_aggregate_flagged_state_id_aggregate_state'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_id', 'response_id', name=op.f('pk_aggregate_flagged'))
    )


def downgrade() -> None:
    for table in ('aggregate_flagged', 'aggregate_choice', 'aggregate_score', 'aggregate_cell', 'aggregate_state'):
        op.drop_table(table)

"""population margins and analysis results

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('population_margin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('questionnaire_code', sa.String(length=64), nullable=False),
    sa.Column('variable', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_population_margin')),
    sa.UniqueConstraint('questionnaire_code', 'variable', 'category', name=op.f('uq_population_margin_questionnaire_code'))
    )
    op.create_table('analysis_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wave_id', sa.Integer(), nullable=False),
    sa.Column('questionnaire_code', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('respondents', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['wave_id'], ['wave.id'], name=op.f('fk_analysis_run_wave_id_wave')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis_run'))
    )
    with op.batch_alter_table('analysis_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analysis_run_wave_id'), ['wave_id'], unique=False)

    op.create_table('area_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('estimate', sa.Float(), nullable=False),
    sa.Column('se', sa.Float(), nullable=False),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.Column('n_eff', sa.Float(), nullable=False),
    sa.Column('population', sa.Float(), nullable=False),
    sa.Column('eb_estimate', sa.Float(), nullable=True),
    sa.Column('eb_mse', sa.Float(), nullable=True),
    sa.Column('prob_below_80', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('points_at_stake', sa.Float(), nullable=True),
    sa.Column('share_of_lost', sa.Float(), nullable=True),
    sa.Column('rank_by_cost', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_area_result_area_id_area')),
    sa.ForeignKeyConstraint(['run_id'], ['analysis_run.id'], name=op.f('fk_area_result_run_id_analysis_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_area_result')),
    sa.UniqueConstraint('run_id', 'area_id', name=op.f('uq_area_result_run_id'))
    )
    with op.batch_alter_table('area_result', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_area_result_area_id'), ['area_id'], unique=False)

    op.create_table('item_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('estimate', sa.Float(), nullable=False),
    sa.Column('se', sa.Float(), nullable=False),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_item_result_area_id_area')),
    sa.ForeignKeyConstraint(['run_id'], ['analysis_run.id'], name=op.f('fk_item_result_run_id_analysis_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_result'))
    )
    with op.batch_alter_table('item_result', schema=None) as batch_op:
        batch_op.create_index('ix_item_result_run_area', ['run_id', 'area_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('item_result', schema=None) as batch_op:
        batch_op.drop_index('ix_item_result_run_area')

    op.drop_table('item_result')
    with op.batch_alter_table('area_result', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_area_result_area_id'))

    op.drop_table('area_result')
    with op.batch_alter_table('analysis_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analysis_run_wave_id'))

    op.drop_table('analysis_run')
    op.drop_table('population_margin')


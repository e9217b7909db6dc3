"""paper batches: print runs of numbered paper questionnaires

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paper_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wave_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('questionnaire_code', sa.String(length=64), nullable=False),
    sa.Column('first_number', sa.Integer(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.Column('printed_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('first_number >= 1 AND last_number >= first_number', name=op.f('ck_paper_batch_numbers')),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_paper_batch_area_id_area')),
    sa.ForeignKeyConstraint(['printed_by_id'], ['staff_user.id'], name=op.f('fk_paper_batch_printed_by_id_staff_user')),
    sa.ForeignKeyConstraint(['wave_id'], ['wave.id'], name=op.f('fk_paper_batch_wave_id_wave')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paper_batch')),
    sa.UniqueConstraint('wave_id', 'area_id', 'first_number', name=op.f('uq_paper_batch_wave_id'))
    )
    with op.batch_alter_table('paper_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_paper_batch_area_id'), ['area_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('paper_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paper_batch_area_id'))

    op.drop_table('paper_batch')

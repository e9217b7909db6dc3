"""sample design: the sampling design of an imported designed sample (issue 25)

A third-party assessment imported with its design columns (``flask import-sample``) is analysed
with R's svydesign(ids, strata, fpc, weights) then raked; this table keeps which response
attributes hold the design, per wave and questionnaire.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sample_design',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('wave_id', sa.Integer(), nullable=False),
        sa.Column('questionnaire_code', sa.String(length=64), nullable=False),
        sa.Column('weights', sa.String(length=200), nullable=True),
        sa.Column('strata', sa.String(length=200), nullable=True),
        sa.Column('cluster', sa.String(length=200), nullable=False),
        sa.Column('fpc', sa.String(length=200), nullable=True),
        sa.Column('lonely_psu', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['wave_id'], ['wave.id'], name=op.f('fk_sample_design_wave_id_wave'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sample_design')),
        sa.UniqueConstraint('wave_id', 'questionnaire_code', name=op.f('uq_sample_design_wave_id')),
    )


def downgrade() -> None:
    op.drop_table('sample_design')

"""area result: design degrees of freedom, variance warning, answers to decide (issue 25)

A designed sample's domain may have no usable variance (inside one PSU per stratum, or every
answer alike): ``variance_warning`` says which, ``df`` are the design's degrees of freedom of the
interval, and ``answers_to_decide`` the planner's answers that decide the flag with 80%
probability. Nullable: runs stored before keep NULL (shown as not known).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('area_result') as batch:
        batch.add_column(sa.Column('df', sa.Float(), nullable=True))
        batch.add_column(sa.Column('variance_warning', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('answers_to_decide', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('area_result') as batch:
        batch.drop_column('answers_to_decide')
        batch.drop_column('variance_warning')
        batch.drop_column('df')

"""response quality flags

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('ip_hash', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('flag_speeder', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('flag_straightline', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('flag_repeat_device', sa.Boolean(), nullable=False, server_default=sa.false()))




def downgrade() -> None:

    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_column('flag_repeat_device')
        batch_op.drop_column('flag_straightline')
        batch_op.drop_column('flag_speeder')
        batch_op.drop_column('ip_hash')
        batch_op.drop_column('device_id')



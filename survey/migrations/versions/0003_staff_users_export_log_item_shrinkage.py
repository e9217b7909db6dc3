"""staff users, export log, item shrinkage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('staff_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('city','district','street','community')", name=op.f('ck_staff_user_role')),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_staff_user_area_id_area')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_user_username'))
    )
    op.create_table('export_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('what', sa.String(length=64), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.Column('wave_id', sa.Integer(), nullable=True),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_export_log_area_id_area')),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_export_log_user_id_staff_user')),
    sa.ForeignKeyConstraint(['wave_id'], ['wave.id'], name=op.f('fk_export_log_wave_id_wave')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_log'))
    )
    with op.batch_alter_table('export_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_log_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('item_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('eb_estimate', sa.Float(), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('item_result', schema=None) as batch_op:
        batch_op.drop_column('eb_estimate')

    with op.batch_alter_table('export_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_log_user_id'))

    op.drop_table('export_log')
    op.drop_table('staff_user')


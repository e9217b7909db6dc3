"""rectification: responsible units, their communities and accounts, tasks, task history, photos; role 'unit'

The staff_user role check gains 'unit'. On PostgreSQL that is a plain ALTER. On SQLite a check
constraint cannot be altered, and recreating staff_user (Alembic's batch mode) would, with
foreign keys on, delete every session through ON DELETE CASCADE and fail on the export log's
references; so the table's stored definition is edited in place instead, the procedure SQLite's
ALTER TABLE documentation gives for loosening a CHECK constraint (every existing row still passes).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('city','district','street','community','school','grid')"
NEW_ROLES = "role IN ('city','district','street','community','school','grid','unit')"


def _sqlite_check(old: str, new: str) -> None:
    """Replace the text of staff_user's role check in SQLite's schema (one transaction, no table copy)."""
    bind = op.get_bind()
    version = bind.exec_driver_sql('PRAGMA schema_version').scalar()
    bind.exec_driver_sql('PRAGMA writable_schema=ON')
    changed = bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'staff_user' "
        "AND instr(sql, ?) > 0", (old, new, old)).rowcount
    bind.exec_driver_sql(f'PRAGMA schema_version={int(version) + 1}')
    bind.exec_driver_sql('PRAGMA writable_schema=OFF')
    if changed != 1:
        raise RuntimeError("staff_user's role check is not the one migration 0005 made; change it by hand")


def _role_check(old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_check(old, new)
    else:
        op.drop_constraint(op.f('ck_staff_user_role'), 'staff_user', type_='check')
        op.create_check_constraint('role', 'staff_user', new)


def upgrade() -> None:
    op.create_table('unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('grids', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit')),
    sa.UniqueConstraint('name', name=op.f('uq_unit_name'))
    )
    op.create_table('unit_community',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_unit_community_area_id_area')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_unit_community_unit_id_unit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', 'area_id', name=op.f('pk_unit_community'))
    )
    op.create_index(op.f('ix_unit_community_area_id'), 'unit_community', ['area_id'], unique=False)
    op.create_table('unit_account',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_unit_account_unit_id_unit')),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_unit_account_user_id_staff_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_unit_account'))
    )
    op.create_index(op.f('ix_unit_account_unit_id'), 'unit_account', ['unit_id'], unique=False)
    op.create_table('rect_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('questionnaire_code', sa.String(length=64), nullable=True),
    sa.Column('item_code', sa.String(length=64), nullable=True),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('term', sa.String(length=100), nullable=True),
    sa.Column('wave_id', sa.Integer(), nullable=True),
    sa.Column('score_before', sa.Float(), nullable=True),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("priority IN ('high','normal','low')", name=op.f('ck_rect_task_priority')),
    sa.CheckConstraint("status IN ('todo','doing','done','closed')", name=op.f('ck_rect_task_status')),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_rect_task_area_id_area')),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_user.id'], name=op.f('fk_rect_task_created_by_id_staff_user')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_rect_task_unit_id_unit')),
    sa.ForeignKeyConstraint(['wave_id'], ['wave.id'], name=op.f('fk_rect_task_wave_id_wave')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rect_task'))
    )
    for column in ('area_id', 'unit_id', 'deadline', 'status'):
        op.create_index(op.f(f'ix_rect_task_{column}'), 'rect_task', [column], unique=False)
    op.create_table('rect_task_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['rect_task.id'], name=op.f('fk_rect_task_event_task_id_rect_task'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_rect_task_event_user_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rect_task_event'))
    )
    op.create_index(op.f('ix_rect_task_event_task_id'), 'rect_task_event', ['task_id'], unique=False)
    op.create_table('rect_task_photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['rect_task_event.id'], name=op.f('fk_rect_task_photo_event_id_rect_task_event')),
    sa.ForeignKeyConstraint(['task_id'], ['rect_task.id'], name=op.f('fk_rect_task_photo_task_id_rect_task'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['staff_user.id'],
                            name=op.f('fk_rect_task_photo_uploaded_by_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rect_task_photo')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_rect_task_photo_stored_name'))
    )
    op.create_index(op.f('ix_rect_task_photo_task_id'), 'rect_task_photo', ['task_id'], unique=False)
    _role_check(OLD_ROLES, NEW_ROLES)


def downgrade() -> None:
    # Unit accounts go first (their sessions with them), so every remaining row passes the old check.
    op.execute("DELETE FROM staff_user WHERE role = 'unit'")
    _role_check(NEW_ROLES, OLD_ROLES)
    op.drop_table('rect_task_photo')
    op.drop_table('rect_task_event')
    op.drop_table('rect_task')
    op.drop_table('unit_account')
    op.drop_table('unit_community')
    op.drop_table('unit')

"""schools, classes, class links, paper entry

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('school',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['area.id'], name=op.f('fk_school_district_id_area')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_school')),
    sa.UniqueConstraint('district_id', 'name', name=op.f('uq_school_district_id'))
    )
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_school_district_id'), ['district_id'], unique=False)

    op.create_table('school_class',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('grade', sa.Integer(), nullable=False),
    sa.Column('pupils', sa.Integer(), nullable=False),
    sa.CheckConstraint('grade BETWEEN 1 AND 12', name=op.f('ck_school_class_grade')),
    sa.CheckConstraint('pupils > 0', name=op.f('ck_school_class_pupils')),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], name=op.f('fk_school_class_school_id_school')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_school_class')),
    sa.UniqueConstraint('school_id', 'name', name=op.f('uq_school_class_school_id'))
    )
    with op.batch_alter_table('school_class', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_school_class_school_id'), ['school_id'], unique=False)

    with op.batch_alter_table('link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('school_class_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('audience', sa.String(length=8), nullable=True))
        batch_op.create_index(batch_op.f('ix_link_school_class_id'), ['school_class_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_link_school_class_id_school_class'), 'school_class', ['school_class_id'], ['id'])

    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('school_class_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('entered_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_response_entered_by_id'), ['entered_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_response_school_class_id'), ['school_class_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_response_entered_by_id_staff_user'), 'staff_user', ['entered_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_response_school_class_id_school_class'), 'school_class', ['school_class_id'], ['id'])

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('school_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_staff_user_school_id_school'), 'school', ['school_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('ck_staff_user_role'), type_='check')
        batch_op.create_check_constraint(
            'role', "role IN ('city','district','street','community','school','grid')")




def downgrade() -> None:

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_staff_user_school_id_school'), type_='foreignkey')
        batch_op.drop_column('school_id')
        batch_op.drop_constraint(batch_op.f('ck_staff_user_role'), type_='check')
        batch_op.create_check_constraint('role', "role IN ('city','district','street','community')")

    with op.batch_alter_table('response', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_response_school_class_id_school_class'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_response_entered_by_id_staff_user'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_response_school_class_id'))
        batch_op.drop_index(batch_op.f('ix_response_entered_by_id'))
        batch_op.drop_column('entered_by_id')
        batch_op.drop_column('school_class_id')

    with op.batch_alter_table('link', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_link_school_class_id_school_class'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_link_school_class_id'))
        batch_op.drop_column('audience')
        batch_op.drop_column('school_class_id')

    with op.batch_alter_table('school_class', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_school_class_school_id'))

    op.drop_table('school_class')
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_school_district_id'))

    op.drop_table('school')


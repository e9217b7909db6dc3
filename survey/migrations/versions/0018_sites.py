"""sites: the places inspectors visit (实地考察点位), each in a community and the charge of a unit (issue 30)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('site_type', sa.String(length=32), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_site_area_id_area')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_site_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site')),
    sa.UniqueConstraint('code', name=op.f('uq_site_code'))
    )
    op.create_index(op.f('ix_site_area_id'), 'site', ['area_id'], unique=False)
    op.create_index(op.f('ix_site_unit_id'), 'site', ['unit_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_site_unit_id'), table_name='site')
    op.drop_index(op.f('ix_site_area_id'), table_name='site')
    op.drop_table('site')

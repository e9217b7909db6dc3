"""area boundaries: each area's outline from the city's GeoJSON, for the office map (issue 30)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('area_boundary',
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('coordinates', sa.JSON(), nullable=False),
    sa.Column('vertices', sa.Integer(), nullable=False),
    sa.Column('min_lon', sa.Float(), nullable=False),
    sa.Column('min_lat', sa.Float(), nullable=False),
    sa.Column('max_lon', sa.Float(), nullable=False),
    sa.Column('max_lat', sa.Float(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['area.id'], name=op.f('fk_area_boundary_area_id_area'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('area_id', name=op.f('pk_area_boundary'))
    )


def downgrade() -> None:
    op.drop_table('area_boundary')

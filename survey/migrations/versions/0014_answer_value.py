"""answer value: answers that are not one choice (several choices, numbers, dates, places, photos)

XLSForm questionnaires ask more than single choices and comments. Such an answer is kept as the
text ODK gives it (``forms.items``) in its own column, so that comments (``text``) stay comments.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('answer') as batch:
        batch.add_column(sa.Column('value', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('answer') as batch:
        batch.drop_column('value')

"""answer text index: the answers that carry text, by response (a community page's newest comments)

A community page lists its newest comments; with a thousand responses of ten answers each per
community, finding the few answers with text read every answer of every response. A partial
index holds only the answers with text, so the look-up grows with the comments, not the answers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_answer_text_response', 'answer', ['response_id'], unique=False,
                    postgresql_where=sa.text('text IS NOT NULL'), sqlite_where=sa.text('text IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_answer_text_response', table_name='answer')

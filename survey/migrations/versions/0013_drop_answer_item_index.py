"""drop the answer (item, choice) index: no query uses it, and every stored answer paid for it

``ix_answer_item`` (migration 0001) was never chosen by any query: the analysis groups every
answer of a wave (a scan), exports read answers by response, comments go through the partial
text index (0011). Each submission still inserted one entry per answer into it, about 13% of
PostgreSQL's CPU per stored questionnaire (0.045 of 0.35 ms for 17 answers, measured with the
one-statement insert), and at a million responses it held 68 MB.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_answer_item', table_name='answer')


def downgrade() -> None:
    op.create_index('ix_answer_item', 'answer', ['item_code', 'choice_code'], unique=False)

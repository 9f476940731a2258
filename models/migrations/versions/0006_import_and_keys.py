"""A register at school scale: registration groups from the MIS, API keys that expire

Revision ID: 0006
Revises: 0005

Written by hand.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('pupils', sa.Column('reg_group', sa.String(length=32), nullable=True))
    op.create_index('ix_pupils_org_year', 'pupils', ['org_id', 'year_group'])
    op.add_column('api_tokens', sa.Column('expires_at', sa.DateTime(timezone=True),
                                          nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('expires_at')
    op.drop_index('ix_pupils_org_year', 'pupils')
    with op.batch_alter_table('pupils') as batch:
        batch.drop_column('reg_group')

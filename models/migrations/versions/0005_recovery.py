"""Recovery and no orphaned objects (issue 12): pending-object intents; media failure
codes with data, and the transient-retry clock

Revision ID: 0005
Revises: 0004

Written by hand.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'pending_objects',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_pending_objects_created_at', 'pending_objects', ['created_at'])
    op.add_column('media', sa.Column('failure_code', sa.String(length=64), nullable=True))
    op.add_column('media', sa.Column('failure_data', sa.JSON(), nullable=True))
    op.add_column('media', sa.Column('transient_since', sa.DateTime(timezone=True),
                                     nullable=True))
    op.add_column('media', sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ('retry_at', 'transient_since', 'failure_data', 'failure_code'):
        with op.batch_alter_table('media') as batch:
            batch.drop_column(column)
    op.drop_index('ix_pending_objects_created_at', 'pending_objects')
    op.drop_table('pending_objects')

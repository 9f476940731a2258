"""Review as a work queue: the uploaded file's name on each medium, and SLT naming a
face (which pupil it is), with the second SLT member's confirmation where policy asks.

Revision ID: 0008
Revises: 0007

Written by hand.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('media', sa.Column('file_name', sa.String(length=255), nullable=True))
    # The last notice a big action left for this browser ("what was taken down"), kept
    # so it is still there after a reload.
    op.add_column('web_sessions', sa.Column('notice', sa.JSON(), nullable=True))
    # The first SLT member's "publish now" tick on a decision that waits for a second.
    op.add_column('review_decisions', sa.Column('publish_on_confirm', sa.Boolean(),
                                                nullable=False, server_default=sa.false()))
    op.create_table(
        'face_identifications',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('media_id', sa.Uuid(), sa.ForeignKey('media.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        # Not a foreign key: a video's faces are replaced when it is screened again,
        # and the record of who named whom stays.
        sa.Column('face_id', sa.Uuid(), nullable=False),
        sa.Column('pupil_id', sa.Uuid(), sa.ForeignKey('pupils.id'), nullable=False),
        sa.Column('previous_pupil_id', sa.Uuid(), nullable=True),
        sa.Column('previous_status', sa.String(length=16), nullable=False),
        sa.Column('justification', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False, index=True),
        sa.Column('decided_by', sa.Uuid(), sa.ForeignKey('api_tokens.id'), nullable=False),
        sa.Column('decider_name', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('second_by', sa.Uuid(), sa.ForeignKey('api_tokens.id'), nullable=True),
        sa.Column('second_name', sa.String(length=200), nullable=True),
        sa.Column('second_at', sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('face_identifications')
    op.drop_column('review_decisions', 'publish_on_confirm')
    op.drop_column('web_sessions', 'notice')
    op.drop_column('media', 'file_name')

"""Named faces survive re-screening: the boxes that find them again, and a lost mark

Revision ID: 0011
Revises: 0010

Written by hand. Additive: five nullable columns on face_identifications. Rows named
before this have no boxes; a re-screen reads them from the face rows it replaces
(services.screen.names).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('face_identifications') as batch:
        batch.add_column(sa.Column('media_sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('boxes', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('lost_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('lost_reason', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('superseded_by', sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('face_identifications') as batch:
        batch.drop_column('superseded_by')
        batch.drop_column('lost_reason')
        batch.drop_column('lost_at')
        batch.drop_column('boxes')
        batch.drop_column('media_sha256')

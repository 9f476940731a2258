"""Consent as schools record it: capture consent (kept in publication_consents under the
name "capture"), photography sessions, and the flags an upload carries from them

Revision ID: 0007
Revises: 0006

Written by hand. "refused" is a new value of publication_consents.status (a plain
string column), so it needs no change here.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'photo_sessions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.Column('event', sa.String(length=200), nullable=False),
        sa.Column('purpose', sa.String(length=200), nullable=False),
        sa.Column('dates', sa.JSON(), nullable=False),
        sa.Column('staff', sa.JSON(), nullable=False),
        sa.Column('devices', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.Uuid(), nullable=False),
        sa.Column('creator_name', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organisations.id']),
        sa.ForeignKeyConstraint(['created_by'], ['api_tokens.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_photo_sessions_org_id', 'photo_sessions', ['org_id'])
    with op.batch_alter_table('media') as batch:
        batch.add_column(sa.Column('session_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('upload_flags', sa.JSON(), nullable=True))
        batch.create_foreign_key('fk_media_session_id_photo_sessions', 'photo_sessions',
                                 ['session_id'], ['id'])
        batch.create_index('ix_media_session_id', ['session_id'])


def downgrade() -> None:
    with op.batch_alter_table('media') as batch:
        batch.drop_index('ix_media_session_id')
        batch.drop_constraint('fk_media_session_id_photo_sessions', type_='foreignkey')
        batch.drop_column('upload_flags')
        batch.drop_column('session_id')
    op.drop_index('ix_photo_sessions_org_id', 'photo_sessions')
    op.drop_table('photo_sessions')

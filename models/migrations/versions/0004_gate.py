"""The gate under locks: consent epoch and match epoch, stale screenings, candidates,
one live publication per channel, idempotency keys, the takedown cursor, the outbox

Revision ID: 0004
Revises: 0003

Written by hand.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    zero = sa.text('0')
    op.add_column('organisations', sa.Column('match_epoch', sa.Integer(), nullable=False,
                                             server_default=zero))
    op.add_column('organisations', sa.Column('consent_epoch', sa.BigInteger(), nullable=False,
                                             server_default=zero))
    op.add_column('organisations', sa.Column('takedown_seq', sa.BigInteger(), nullable=False,
                                             server_default=zero))
    op.add_column('media', sa.Column('screened_match_epoch', sa.Integer(), nullable=True))
    op.add_column('media', sa.Column('screened_gallery_version', sa.Integer(), nullable=True))
    op.add_column('media', sa.Column('needs_rescreen', sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.add_column('media', sa.Column('frames_screened', sa.Integer(), nullable=True))
    op.add_column('media', sa.Column('screen_flags', sa.JSON(), nullable=True))
    op.add_column('faces', sa.Column('candidates', sa.JSON(), nullable=True))
    op.add_column('faces', sa.Column('track', sa.Integer(), nullable=True))
    op.add_column('publications', sa.Column('idempotency_key', sa.String(length=200),
                                            nullable=True))
    op.add_column('publications', sa.Column('takedown_seq', sa.BigInteger(), nullable=True))
    # Media screened before this revision carry no epoch: they are stale, and the
    # re-screen sweep looks at them again against the register as it is now.
    # Duplicate live copies made by the race this revision closes: keep the oldest.
    op.execute(
        "UPDATE publications SET withdrawn_at = published_at, "
        "withdrawn_reason = 'duplicate live copy removed by migration 0004' "
        "WHERE withdrawn_at IS NULL AND EXISTS (SELECT 1 FROM publications p2 "
        "WHERE p2.media_id = publications.media_id AND p2.channel = publications.channel "
        "AND p2.withdrawn_at IS NULL AND p2.published_at < publications.published_at)"
    )
    op.create_index('uq_publications_live', 'publications', ['media_id', 'channel'],
                    unique=True, postgresql_where=sa.text('withdrawn_at IS NULL'),
                    sqlite_where=sa.text('withdrawn_at IS NULL'))
    with op.batch_alter_table('publications') as batch:
        batch.create_unique_constraint('uq_publications_media_id_idempotency_key',
                                       ['media_id', 'idempotency_key'])
    op.create_index('ix_publications_takedown_seq', 'publications', ['takedown_seq'])
    op.create_table(
        'outbox',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outbox_org_id', 'outbox', ['org_id'])
    op.create_index('ix_outbox_status', 'outbox', ['status'])


def downgrade() -> None:
    op.drop_index('ix_outbox_status', 'outbox')
    op.drop_index('ix_outbox_org_id', 'outbox')
    op.drop_table('outbox')
    op.drop_index('ix_publications_takedown_seq', 'publications')
    with op.batch_alter_table('publications') as batch:
        batch.drop_constraint('uq_publications_media_id_idempotency_key', type_='unique')
    op.drop_index('uq_publications_live', 'publications')
    for table, column in [('publications', 'takedown_seq'), ('publications', 'idempotency_key'),
                          ('faces', 'track'), ('faces', 'candidates'),
                          ('media', 'screen_flags'), ('media', 'frames_screened'),
                          ('media', 'needs_rescreen'), ('media', 'screened_gallery_version'),
                          ('media', 'screened_match_epoch'), ('organisations', 'takedown_seq'),
                          ('organisations', 'consent_epoch'), ('organisations', 'match_epoch')]:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)

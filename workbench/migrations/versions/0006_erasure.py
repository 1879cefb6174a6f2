"""Tenant erasure (the tenant's mark, the objects deleted) and the export airlock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_erasures",
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("certificate_sha256", sa.String(64)),
    )
    op.create_table(
        "erased_objects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("etag", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("tenant", "bucket", "key"),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("access_requests.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("requester", sa.String(255), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer", sa.String(255)),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.Column("comment", sa.Text),
        sa.Column("downloads", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("exports")
    op.drop_table("erased_objects")
    op.drop_table("tenant_erasures")

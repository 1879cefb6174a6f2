"""Jobs (notebooks run headless under a request), their metrics, and per-job grants and tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("access_requests.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("user", sa.String(255), nullable=False, index=True),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("profile", sa.String(255), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("cpus", sa.Float, nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False, server_default="1"),
        sa.Column("notebook", sa.Text, nullable=False),
        sa.Column("notebook_name", sa.String(255), nullable=False),
        sa.Column("notebook_sha256", sa.String(64), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("backend_ref", sa.Text),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("rerun_of", sa.Integer),
    )
    op.create_table(
        "job_metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("grants") as t:
        t.add_column(sa.Column("job_id", sa.Integer, nullable=True))
    with op.batch_alter_table("request_tokens") as t:
        t.add_column(sa.Column("job_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_tokens") as t:
        t.drop_column("job_id")
    with op.batch_alter_table("grants") as t:
        t.drop_column("job_id")
    op.drop_table("job_metrics")
    op.drop_table("jobs")

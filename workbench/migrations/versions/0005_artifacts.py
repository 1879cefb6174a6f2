"""Artifacts (models) in the registry, their lineage, evaluation reports, reviews, and the
reads of artifacts by servers and jobs (which become parents of what those save).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("scope", sa.String(16), nullable=False, server_default="tenant"),
        sa.Column("name", sa.String(128), nullable=False, index=True),
        sa.Column("model_type", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False, index=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("access_requests.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("job_id", sa.Integer, nullable=True, index=True),
        sa.Column("notebook_sha256", sa.String(64), nullable=True),
        sa.Column("image", sa.Text, nullable=True),
        sa.Column("parameters", sa.Text, nullable=False, server_default="{}"),
        sa.Column("metrics", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_by", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quarantine_reason", sa.Text, nullable=True),
    )
    op.create_table(
        "artifact_sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True
        ),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("dataset", sa.String(255), nullable=True),
    )
    op.create_table(
        "artifact_parents",
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column(
            "parent_id",
            sa.Integer,
            sa.ForeignKey("artifacts.id"),
            primary_key=True,
            index=True,
        ),
    )
    op.create_table(
        "artifact_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True
        ),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("target_stage", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False, server_default="tenant"),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("runs", sa.Text, nullable=False),
        sa.Column("results", sa.Text, nullable=False, server_default="[]"),
        sa.Column("baseline_id", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "artifact_reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True
        ),
        sa.Column("report_id", sa.Integer, sa.ForeignKey("artifact_reports.id"), nullable=False),
        sa.Column("reviewer", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "artifact_uses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True
        ),
        sa.Column("request_id", sa.Integer, nullable=False, index=True),
        sa.Column("job_id", sa.Integer, nullable=True, index=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("artifact_uses")
    op.drop_table("artifact_reviews")
    op.drop_table("artifact_reports")
    op.drop_table("artifact_parents")
    op.drop_table("artifact_sources")
    op.drop_table("artifacts")

"""Caches keyed by architecture and device: trained weights and raw latency measurements.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "weights",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("space_fingerprint", sa.String(128), nullable=False),
        sa.Column("arch_id", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weights")),
        sa.UniqueConstraint(
            "space_fingerprint", "arch_id", "key", name=op.f("uq_weights_space_fingerprint")
        ),
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("median_ms", sa.Float, nullable=False),
        sa.Column("iqr_ms", sa.Float, nullable=True),
        sa.Column("repeats", sa.Integer, nullable=True),
        sa.Column("device", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
    )
    op.create_index(op.f("ix_measurements_device_id_kind"), "measurements", ["device_id", "kind"])


def downgrade() -> None:
    op.drop_index(op.f("ix_measurements_device_id_kind"), table_name="measurements")
    op.drop_table("measurements")
    op.drop_table("weights")

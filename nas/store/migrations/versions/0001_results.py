"""Results: studies, the architectures they tried, trials and learning curves.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("space_ref", sa.String(500), nullable=False),
        sa.Column("space_fingerprint", sa.String(128), nullable=False),
        sa.Column("space_description", sa.JSON, nullable=False),
        sa.Column("searcher", sa.String(255), nullable=False),
        sa.Column("searcher_settings", sa.JSON, nullable=False),
        sa.Column("objectives", sa.JSON, nullable=False),
        sa.Column("constraints", sa.JSON, nullable=False),
        sa.Column("evaluator", sa.JSON, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("budget", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("user_attrs", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sa.UniqueConstraint("name", name=op.f("uq_studies_name")),
    )
    op.create_table(
        "architectures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("space_fingerprint", sa.String(128), nullable=False),
        sa.Column("arch_id", sa.String(128), nullable=False),
        sa.Column("arch_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_architectures")),
        sa.UniqueConstraint(
            "space_fingerprint", "arch_id", name=op.f("uq_architectures_space_fingerprint")
        ),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("arch_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("predicted", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trials")),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_trials_study_id_studies"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("study_id", "number", name=op.f("uq_trials_study_id")),
        sa.CheckConstraint(
            "state IN ('RUNNING', 'COMPLETE', 'FAILED', 'PRUNED')", name=op.f("ck_trials_state")
        ),
    )
    op.create_index(op.f("ix_trials_study_id_arch_id"), "trials", ["study_id", "arch_id"])
    op.create_index(op.f("ix_trials_study_id_state"), "trials", ["study_id", "state"])
    op.create_table(
        "curves",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trial_id", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_curves")),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f("fk_curves_trial_id_trials"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("trial_id", "epoch", name=op.f("uq_curves_trial_id")),
    )


def downgrade() -> None:
    op.drop_table("curves")
    op.drop_index(op.f("ix_trials_study_id_state"), table_name="trials")
    op.drop_index(op.f("ix_trials_study_id_arch_id"), table_name="trials")
    op.drop_table("trials")
    op.drop_table("architectures")
    op.drop_table("studies")

"""ORM models of the results database. The migrations under `migrations/` create exactly these.

Change a model only together with a new Alembic revision; `tests/store` checks they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names make migrations identical on every backend (and droppable on SQLite).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# Our own Alembic version table, so a database that another Alembic user owns is not mistaken
# for ours.
VERSION_TABLE = "nas_alembic_version"
# The newest migration under migrations/versions; bump it with every new revision.
SCHEMA_REVISION = "0002"
TABLES = ("studies", "architectures", "trials", "curves", "weights", "measurements")
STATES = ("RUNNING", "COMPLETE", "FAILED", "PRUNED")


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp that always comes back timezone-aware in UTC (SQLite stores no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    space_ref: Mapped[str] = mapped_column(sa.String(500))
    space_fingerprint: Mapped[str] = mapped_column(sa.String(128))
    space_description: Mapped[Any] = mapped_column(sa.JSON)
    searcher: Mapped[str] = mapped_column(sa.String(255))
    searcher_settings: Mapped[Any] = mapped_column(sa.JSON)
    objectives: Mapped[Any] = mapped_column(sa.JSON)
    constraints: Mapped[Any] = mapped_column(sa.JSON)
    evaluator: Mapped[Any] = mapped_column(sa.JSON)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    budget: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user_attrs: Mapped[Any] = mapped_column(sa.JSON)


class Architecture(Base):
    __tablename__ = "architectures"
    __table_args__ = (sa.UniqueConstraint("space_fingerprint", "arch_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    space_fingerprint: Mapped[str] = mapped_column(sa.String(128))
    arch_id: Mapped[str] = mapped_column(sa.String(128))
    arch_json: Mapped[str] = mapped_column(sa.Text)


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        sa.UniqueConstraint("study_id", "number"),
        sa.CheckConstraint(f"state IN {STATES!r}", name="state"),
        sa.Index("ix_trials_study_id_arch_id", "study_id", "arch_id"),
        sa.Index("ix_trials_study_id_state", "study_id", "state"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    arch_id: Mapped[str] = mapped_column(sa.String(128))
    state: Mapped[str] = mapped_column(sa.String(16))
    metrics: Mapped[Any] = mapped_column(sa.JSON)
    predicted: Mapped[Any] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    worker: Mapped[str] = mapped_column(sa.String(255))
    host: Mapped[str] = mapped_column(sa.String(255))
    device: Mapped[str] = mapped_column(sa.String(255))
    extra: Mapped[Any] = mapped_column(sa.JSON)


class Curve(Base):
    __tablename__ = "curves"
    __table_args__ = (sa.UniqueConstraint("trial_id", "epoch"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trials.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(sa.Integer)
    values: Mapped[Any] = mapped_column("values", sa.JSON)


class Weights(Base):
    __tablename__ = "weights"
    __table_args__ = (sa.UniqueConstraint("space_fingerprint", "arch_id", "key"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    space_fingerprint: Mapped[str] = mapped_column(sa.String(128))
    arch_id: Mapped[str] = mapped_column(sa.String(128))
    key: Mapped[str] = mapped_column(sa.String(255))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Measurement(Base):
    __tablename__ = "measurements"
    __table_args__ = (sa.Index("ix_measurements_device_id_kind", "device_id", "kind"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(128))
    config: Mapped[Any] = mapped_column(sa.JSON)
    batch_size: Mapped[int] = mapped_column(sa.Integer)
    median_ms: Mapped[float] = mapped_column(sa.Float)
    iqr_ms: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    repeats: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    device: Mapped[Any] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

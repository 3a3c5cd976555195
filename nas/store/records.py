"""The plain records the store hands out and takes in (no ORM objects leave the package)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


class TrialState(enum.StrEnum):
    """The life cycle of one trial: RUNNING until it ends in one of the three others."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"


@dataclass(frozen=True)
class StudySpec:
    """What a user asks for when starting a study; everything needed to resume it."""

    name: str
    space_ref: str
    space_fingerprint: str
    space_description: dict[str, Any]
    searcher: str
    searcher_settings: dict[str, Any]
    objectives: list[str]
    constraints: list[str]
    evaluator: dict[str, Any]
    seed: int
    budget: int
    # Free-form notes (tags, the command line, a git commit); not part of the search itself.
    user_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyRecord:
    """A stored study with its trial counts by state."""

    id: int
    name: str
    space_ref: str
    space_fingerprint: str
    space_description: dict[str, Any]
    searcher: str
    searcher_settings: dict[str, Any]
    objectives: list[str]
    constraints: list[str]
    evaluator: dict[str, Any]
    seed: int
    budget: int
    created_at: datetime
    finished_at: datetime | None
    n_complete: int = 0
    n_failed: int = 0
    n_running: int = 0
    n_pruned: int = 0
    user_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        """Return the number of trials in every state."""
        return self.n_complete + self.n_failed + self.n_running + self.n_pruned

    @property
    def spec(self) -> StudySpec:
        """Return the StudySpec this study was created from."""
        names = {f.name for f in fields(StudySpec)}
        return StudySpec(**{k: getattr(self, k) for k in names})


@dataclass(frozen=True)
class TrialRecord:
    """One stored trial: an architecture, how it ended, and what was measured."""

    id: int
    study_id: int
    number: int
    state: TrialState
    arch_id: str
    architecture: dict[str, Any]
    metrics: dict[str, float]
    predicted: list[str]
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    worker: str
    host: str
    device: str
    extra: dict[str, Any]

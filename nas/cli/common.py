"""Helpers shared by the CLI commands: opening a study's space again, printing tables."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from nas.loading import study_space
from nas.space import Space
from nas.store import Store, StudyRecord, TrialRecord

console = Console()
err_console = Console(stderr=True)

DB_HELP = "results database: a file path (SQLite) or an SQLAlchemy URL"


def space_of(study: StudyRecord) -> Space:
    """Return the study's space, rebuilt from its reference."""
    return study_space(study.space_ref, study.user_attrs.get("space_args") or {},
                       study.space_fingerprint, study.name)


def open_study(db: str, name: str, readonly: bool = True) -> tuple[Store, StudyRecord]:
    """Return the store and the named study."""
    store = Store.open(db, readonly=readonly)
    return store, store.get_study(name)


def fmt(v: Any) -> str:
    """Return a short human form of a metric value."""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def trial_dict(t: TrialRecord) -> dict[str, Any]:
    """Return the JSON form of a trial (the documented fields of `nas trials --format json`)."""
    return {
        "number": t.number, "state": str(t.state), "arch_id": t.arch_id,
        "architecture": t.architecture, "metrics": t.metrics, "predicted": t.predicted,
        "error": t.error, "duration_s": t.duration_s, "device": t.device, "extra": t.extra,
    }


def trials_table(trials: list[TrialRecord], metrics: list[str], title: str = "") -> Table:
    """Return a rich table of trials with the given metric columns."""
    table = Table(title=title or None)
    for col in ["#", "state", *metrics, "arch_id"]:
        table.add_column(col, justify="right" if col in metrics or col == "#" else "left")
    for t in trials:
        marks = [fmt(t.metrics.get(m, "")) + ("*" if m in t.predicted else "") for m in metrics]
        table.add_row(str(t.number), str(t.state), *marks, t.arch_id)
    return table


def metric_columns(study: StudyRecord, trials: list[TrialRecord]) -> list[str]:
    """Return the metric columns worth showing: objectives and constraints first, then common ones."""
    names = [o.split(":")[0] for o in study.objectives]
    for c in study.constraints:
        for op in ("<=", ">=", "<", ">"):
            if op in c:
                names.append(c.split(op)[0])
                break
    present = {k for t in trials for k in t.metrics}
    for extra in ("accuracy", "test_accuracy", "params", "latency_ms", "train_seconds"):
        if extra in present and extra not in names:
            names.append(extra)
    return [n for n in dict.fromkeys(names) if n in present]


def dumps(data: Any) -> str:
    """Return JSON text (NaN as null, so any JSON reader accepts it)."""
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(data), indent=2, default=str)

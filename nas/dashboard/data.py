"""Reading the store for the dashboard: trial tables as DataFrames, and the numbers pages plot.

Everything here is plain pandas/numpy over records the store hands out (no Streamlit), so the
pages stay thin and the benchmark can time the same code. Reads are cached by the pages with
`st.cache_data`, keyed on the database URL plus a cheap change marker (a study's trial counts).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from nas.objectives import KNOWN_METRICS, Constraint, Objective, pareto_mask
from nas.store import Store, StudyRecord

HOVER = "_arch_text"
BASE_COLUMNS = ["number", "state", "arch_id", "started_at", "finished_at", "duration_s",
                "error", "predicted", "worker", "id"]
# A study with no finish mark and no trial activity for this long is taken for dead.
STALE_AFTER = timedelta(minutes=10)
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
UNITS = {"accuracy": "", "test_accuracy": "", "pruned_accuracy": "", "loss": "",
         "params": "count", "flops": "FLOPs", "size_mb": "MB", "latency_ms": "ms",
         "train_seconds": "s", "sparsity": "fraction", "latency_ms_measured": "ms",
         "latency_ms_predicted": "ms"}


@dataclass
class StudyData:
    """A study's trials as one table: base columns, one column per metric and per decision."""

    df: pd.DataFrame
    metrics: list[str] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)  # decision label -> column name


def unit(metric: str) -> str:
    """Return the unit of a metric for axis labels ('' when it has none)."""
    if metric.startswith("lat_ms_") or metric.startswith("latency_ms"):
        return "ms"
    return UNITS.get(metric, "")


def label(metric: str) -> str:
    """Return an axis label: the metric name with its unit in brackets."""
    u = unit(metric)
    return f"{metric} [{u}]" if u else metric


def direction(metric: str, objectives: list[str]) -> str:
    """Return 'max' or 'min' for a metric: the study's objective direction, else the vocabulary's."""
    for text in objectives:
        o = Objective.parse(text)
        if o.name == metric:
            return o.direction
    if metric.startswith("lat_ms_") or metric.startswith("latency_ms"):
        return "min"
    return KNOWN_METRICS.get(metric, "max")


def study_marker(study: StudyRecord) -> tuple:
    """Return a cheap value that changes whenever the study's trials change (a cache key)."""
    return (study.n_complete, study.n_failed, study.n_running, study.n_pruned,
            str(study.finished_at))


def load_study(store: Store, study: StudyRecord) -> StudyData:
    """Return the study's trials as a StudyData table (one row per trial, in number order)."""
    trials = store.trials(study.id)
    base = pd.DataFrame({
        "number": [t.number for t in trials], "state": [t.state.value for t in trials],
        "arch_id": [t.arch_id for t in trials], "started_at": [t.started_at for t in trials],
        "finished_at": [t.finished_at for t in trials],
        "duration_s": [t.duration_s for t in trials], "error": [t.error for t in trials],
        "predicted": [", ".join(t.predicted) for t in trials],
        "worker": [t.worker for t in trials], "id": [t.id for t in trials],
    }, columns=BASE_COLUMNS)
    metrics = pd.DataFrame.from_records([t.metrics for t in trials], index=base.index)
    metrics = metrics.apply(pd.to_numeric, errors="coerce").astype(float)
    labels = list(study.space_description.get("decisions", {}))
    arch = pd.DataFrame.from_records([t.architecture for t in trials], index=base.index)
    labels += [c for c in arch.columns if c not in labels]
    taken = set(BASE_COLUMNS) | set(metrics.columns)
    decisions = {lab: (f"decision:{lab}" if lab in taken else lab) for lab in labels}
    arch = arch.reindex(columns=labels).rename(columns=decisions)
    df = pd.concat([base, metrics, arch], axis=1)
    for col in ("started_at", "finished_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    sd = StudyData(df, list(metrics.columns), decisions)
    df[HOVER] = arch_text(sd)  # built once per load: the Pareto chart's hover text
    return sd


def usable(data: StudyData, constraints: list[str]) -> pd.Series:
    """Return a mask of COMPLETE trials meeting every constraint whose metric is known."""
    ok = data.df["state"] == "COMPLETE"
    for text in constraints:
        c = Constraint.parse(text)
        if c.name in data.df:
            v = data.df[c.name]
            # Unknown (NaN) values do not count as violations, as nas.objectives.feasible says.
            ok &= v.isna() | _OPS[c.op](v, c.bound)
    return ok


def best_summary(data: StudyData, objectives: list[str], constraints: list[str]) -> str:
    """Return the best value (one objective) or the Pareto front size (several), as text."""
    objs = [Objective.parse(o) for o in objectives]
    names = [o.name for o in objs]
    if any(n not in data.df for n in names):
        return "-"
    rows = data.df[usable(data, constraints)][names].dropna()
    if rows.empty:
        return "-"
    if len(objs) == 1:
        v = rows[names[0]].max() if objs[0].direction == "max" else rows[names[0]].min()
        return f"{names[0]} {v:.4g}"
    signed = rows.to_numpy() * np.array([o.sign() for o in objs])
    return f"front of {int(pareto_mask(signed).sum())}"


def best_so_far(data: StudyData, metric: str, how: str) -> pd.Series:
    """Return, per trial number, the best value of `metric` among COMPLETE trials up to it."""
    if metric not in data.df:
        return pd.Series(np.nan, index=data.df["number"], dtype=float)
    v = data.df[metric].where(data.df["state"] == "COMPLETE")
    # cummax leaves NaN where a trial failed; the best so far then is the one before it.
    best = (v.cummax() if how == "max" else v.cummin()).ffill()
    return pd.Series(best.to_numpy(), index=data.df["number"])


def importance(data: StudyData, metric: str) -> pd.DataFrame:
    """Return decisions ranked by the share of the metric's variance their options explain (eta^2)."""
    cols = [metric, *[c for c in data.decisions.values() if c in data.df]]
    # Columns first, then rows: masking the whole frame copies every (Arrow) column.
    df = data.df[cols][(data.df["state"] == "COMPLETE") & data.df[metric].notna()]
    y = df[metric]
    total = float(((y - y.mean()) ** 2).sum())
    rows = []
    for lab, col in data.decisions.items():
        if col not in df or total <= 0:
            continue
        groups = y.groupby(df[col].astype(str).where(df[col].notna(), "(inactive)"))
        between = float((groups.count() * (groups.mean() - y.mean()) ** 2).sum())
        rows.append({"decision": lab, "importance": between / total, "options": groups.ngroups})
    out = pd.DataFrame(rows, columns=["decision", "importance", "options"])
    return out.sort_values("importance", ascending=False, ignore_index=True)


def arch_text(data: StudyData, rows: pd.DataFrame | None = None) -> pd.Series:
    """Return one 'label=value' line per trial, for hover text."""
    df = data.df if rows is None else rows
    cols = [c for c in data.decisions.values() if c in df]
    if not cols:
        return pd.Series("", index=df.index)
    parts = [(c + "=" + df[c].astype(str)).where(df[c].notna(), "") for c in cols]
    joined = parts[0].str.cat(parts[1:], sep="<br>") if len(parts) > 1 else parts[0]
    return joined.str.replace(r"(<br>)+", "<br>", regex=True).str.strip("<br>")


def hypervolume_2d(points: np.ndarray) -> float:
    """Return the area dominated by `points` (minimised, normalised) up to the reference (1.1, 1.1)."""
    pts = points[np.all(points < 1.1, axis=1)]
    if not len(pts):
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    prev = np.minimum.accumulate(np.concatenate([[1.1], pts[:, 1]]))[:-1]
    return float(np.sum((1.1 - pts[:, 0]) * np.clip(prev - pts[:, 1], 0, None)))


def hypervolume_curve(values: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      signs: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Return (trial counts, hypervolume of the first n trials) at up to `points` checkpoints.

    `values` holds two objectives per trial in trial order (NaN for unusable trials); each is
    normalised to [0, 1] by `lo`/`hi` (shared across the compared studies) with 0 the best.
    """
    span = np.where(hi > lo, hi - lo, 1.0)
    z = (values - lo) / span
    z = np.where(signs > 0, 1.0 - z, z)
    n = len(z)
    checkpoints = np.unique(np.linspace(1, n, min(n, points)).astype(int)) if n else np.array([], int)
    finite = np.all(np.isfinite(z), axis=1)
    # Only the front so far can add area, so each checkpoint merges the new trials into it.
    front, start, hv = np.empty((0, 2)), 0, []
    for k in checkpoints:
        cand = np.vstack([front, z[start:k][finite[start:k]]])
        front = cand[pareto_mask(-cand)] if len(cand) else cand
        hv.append(hypervolume_2d(front))
        start = k
    return checkpoints, np.array(hv)


def study_state(study: StudyRecord, data: StudyData, now: datetime | None = None) -> str:
    """Return 'finished', 'running' or 'died' (no finish mark and no activity for a while)."""
    if study.finished_at is not None:
        return "finished"
    now = now or datetime.now(UTC)
    times = pd.concat([data.df["started_at"], data.df["finished_at"]]).dropna()
    last = times.max() if len(times) else pd.Timestamp(study.created_at)
    last = last.tz_localize(UTC) if last.tzinfo is None else last
    return "running" if now - last.to_pydatetime() < STALE_AFTER else "died"


def studies_table(studies: list[StudyRecord], datas: list[StudyData]) -> pd.DataFrame:
    """Return one row per study: space, searcher, objectives, data set, state, progress, best."""
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for st, data in zip(studies, datas, strict=True):
        done = st.n_complete + st.n_failed + st.n_pruned
        end = st.finished_at or (data.df["finished_at"].max() if len(data.df) else None)
        created = pd.Timestamp(st.created_at)
        created = created.tz_localize(UTC) if created.tzinfo is None else created
        end = pd.Timestamp(end) if end is not None and not pd.isna(end) else None
        if end is not None and end.tzinfo is None:
            end = end.tz_localize(UTC)
        rows.append({
            "study": st.name, "space": st.space_ref or st.space_description.get("name", ""),
            "searcher": st.searcher, "objectives": ", ".join(st.objectives),
            "dataset": str(st.evaluator.get("dataset", st.evaluator.get("kind", ""))),
            "state": study_state(st, data, now), "trials": f"{done} / {st.budget}",
            "failed": st.n_failed, "best": best_summary(data, st.objectives, st.constraints),
            "started": created.to_pydatetime(),
            "duration_s": (end - created).total_seconds() if end is not None else None,
        })
    return pd.DataFrame(rows)

"""Helpers shared by the CLI commands: opening a study's space again, printing tables."""

from __future__ import annotations

import json
import math
import shlex
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nas.errors import NasError
from nas.references import study_space
from nas.space import Space
from nas.store import StudyRecord, TrialRecord

if TYPE_CHECKING:
    from nas.store import Store

console = Console()

ARCH_ID_SHOWN = 8  # characters of an architecture id in tables (the JSON and CSV forms give it whole)
DB_HELP = "results database: a file path (SQLite) or an SQLAlchemy URL"


SPACE_HELP = ("the study's space, path/to/file.py:function or module:function, to rebuild its models "
              "(the stored space arguments are passed to it)")
TRUST_HELP = ("import and run the space code that the database itself names; only for a database you "
              "trust (a database is data: without this or --space no code it names is run)")


def space_of(study: StudyRecord, space: str | None, trust_db: bool) -> Space:
    """Return the study's space, rebuilt from the code the user named (or, if trusted, the stored one).

    A database is data: the reference stored in it is imported only under --trust-db.
    """
    if space is None and not trust_db:
        hint = f"--space {shlex.quote(study.space_ref)}" if study.space_ref else "--space FILE.py:FUNCTION"
        raise NasError(f"rebuilding study {printable(study.name)!r}'s models runs its space code: pass "
                       f"{hint} (the space it was run with), or --trust-db to import what the database "
                       "names")
    return study_space(space or study.space_ref, study.user_attrs.get("space_args") or {},
                       study.space_fingerprint, study.name)


def printable(text: object) -> str:
    """Return text safe to print: control characters (terminal escapes, newlines) spelled out."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def open_store(db: str, readonly: bool = False) -> Store:
    """Return the store at `db`; SQLAlchemy is imported here, so `nas --help` never pays for it."""
    from nas.store import Store

    return Store.open(db, readonly=readonly)


def open_study(db: str, name: str, readonly: bool = True) -> tuple[Store, StudyRecord]:
    """Return the store and the named study."""
    store = open_store(db, readonly=readonly)
    return store, store.get_study(name)


def fmt(v: Any) -> str:
    """Return a short human form of a metric value."""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):  # short enough for an 80-column table
            if abs(v) >= 10 * scale:
                return f"{v / scale:.4g}{unit}"
        return f"{v:.4g}"
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
    table = Table(title=Text(title) if title else None)  # Text: a name is never read as markup
    for col in ["#", "state", *metrics, "arch_id"]:  # long headers fold rather than end in "…"
        table.add_column(col, justify="right" if col in metrics or col == "#" else "left", overflow="fold")
    for t in trials:
        marks = [fmt(t.metrics.get(m, "")) + ("*" if m in t.predicted else "") for m in metrics]
        table.add_row(str(t.number), str(t.state), *marks, t.arch_id[:ARCH_ID_SHOWN])
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

"""Reading results: `nas studies`, `nas trials`, `nas best`, `nas show`, `nas export`."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from nas.cli.common import (
    DB_HELP,
    SPACE_HELP,
    TRUST_HELP,
    console,
    dumps,
    fmt,
    metric_columns,
    open_store,
    open_study,
    printable,
    space_of,
    trial_dict,
    trials_table,
)
from nas.errors import NasError
from nas.objectives import parse_constraints, parse_objectives
from nas.results import best_trials
from nas.results.weights import trial_weights
from nas.space import Architecture


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class State(StrEnum):
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"
    RUNNING = "RUNNING"


class ExportFormat(StrEnum):
    torchscript = "torchscript"
    onnx = "onnx"
    state_dict = "state-dict"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("studies", help="List the studies in a database.\n\nExample: nas studies --db nas.db"
                )(studies)
    app.command("trials", help="List a study's trials.\n\nExample: nas trials demo --format json")(trials)
    app.command("best", help="Show the best architecture, or the Pareto front.\n\nExample: nas best demo"
                )(best)
    app.command("show", help="Show one trial: decisions, metrics and the model.\n\n"
                             "Example: nas show demo 3")(show)
    app.command("export", help="Export a trial's model (trained weights when stored).\n\n"
                               "Example: nas export demo 3 --format torchscript --out model.pt")(export)


def studies(db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
            format: Annotated[Format, typer.Option(help="table | json | csv")] = Format.table) -> None:
    """List studies."""
    rows = [{"name": s.name, "space": s.space_ref, "searcher": s.searcher, "objectives": s.objectives,
             "dataset": s.evaluator.get("dataset", s.evaluator.get("name")), "complete": s.n_complete,
             "failed": s.n_failed, "running": s.n_running, "budget": s.budget,
             "created": s.created_at, "finished": s.finished_at}
            for s in open_store(db, readonly=True).list_studies()]
    if format is Format.json:
        console.print_json(dumps(rows))
    elif format is Format.csv:
        _print_csv(rows)
    elif not rows:
        console.print(f"no studies in {db}: start one with nas search SPACE --db {db}")
    else:  # the columns that fit 80 characters; json and csv give every field
        table = Table()
        for col in ("name", "space", "searcher", "objectives", "data", "trials", "failed", "created"):
            table.add_column(col, overflow="fold")
        for r in rows:
            cells = (r["name"], str(r["space"]).rpartition("/")[2], r["searcher"], ", ".join(r["objectives"]),
                     r["dataset"], f"{r['complete']}/{r['budget']}", r["failed"],
                     f"{r['created']:%Y-%m-%d %H:%M}" if r["created"] else "")
            table.add_row(*(Text(printable(c)) for c in cells))  # Text: names are never markup
        console.print(table, markup=False, highlight=False)


def trials(study: str, db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
           format: Annotated[Format, typer.Option(help="table | json | csv")] = Format.table,
           state: Annotated[State | None, typer.Option(case_sensitive=False,
                                                       help="only trials in this state")] = None
           ) -> None:
    """List trials."""
    store, rec = open_study(db, study)
    ts = [t for t in store.trials(rec.id) if state is None or str(t.state) == state.value]
    if format is Format.json:
        print(dumps([trial_dict(t) for t in ts]))
    elif format is Format.csv:
        names = sorted({k for t in ts for k in t.metrics})
        _print_csv([{"number": t.number, "state": str(t.state), "arch_id": t.arch_id,
                     "architecture": Architecture(t.architecture).to_json(),
                     **{m: t.metrics.get(m, "") for m in names}, "error": t.error or ""} for t in ts])
    else:
        console.print(trials_table(ts, metric_columns(rec, ts), f"{printable(rec.name)}: {len(ts)} trials "
                                   "(* = predicted, not measured)"), markup=False)


def best(study: str, db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
         format: Annotated[Format, typer.Option(help="table | json")] = Format.table) -> None:
    """Show the best trial(s)."""
    store, rec = open_study(db, study)
    ts = store.trials(rec.id)
    top = best_trials(ts, parse_objectives(rec.objectives), parse_constraints(rec.constraints))
    if format is Format.json:
        print(dumps([trial_dict(t) for t in top]))
        return
    if not top:
        console.print(f"study '{study}' has no completed feasible trial yet")
        return
    title = "best architecture" if len(top) == 1 else f"Pareto front ({len(top)})"
    console.print(trials_table(top, metric_columns(rec, ts), title))
    for t in top[:3]:
        console.print(f"trial {t.number}: {Architecture(t.architecture).to_json()}", markup=False,
                      highlight=False, soft_wrap=True)  # one line: it pastes as the JSON it is


def show(study: str, trial: int, db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
         space: Annotated[str | None, typer.Option(help=SPACE_HELP)] = None,
         trust_db: Annotated[bool, typer.Option("--trust-db", help=TRUST_HELP)] = False) -> None:
    """Show one trial."""
    store, rec = open_study(db, study)
    t = store.get_trial(rec.id, trial)
    console.print(f"{printable(rec.name)} trial {t.number} ({t.state}) arch {t.arch_id}", markup=False)
    for label, value in t.architecture.items():
        console.print(f"  {printable(label)} = {printable(value)}", markup=False)
    for name, value in sorted(t.metrics.items()):
        console.print(f"  {printable(name)} {fmt(value)}{' (predicted)' if name in t.predicted else ''}",
                      markup=False)
    if t.error:
        console.print(f"error: {printable(t.error)}", markup=False)
    if space is None and not trust_db:  # a database is data: print the model text stored with the trial
        text = (t.extra.get("model_drawing") or {}).get("text") if isinstance(t.extra, dict) else None
        console.print(str(text) if text else "(the model as built is not stored with this trial; pass "
                      "--space REF to rebuild and print it)", markup=False, highlight=False)
        return
    model = space_of(rec, space, trust_db).build(t.architecture)
    console.print(str(model), markup=False, highlight=False)


def export(study: str, trial: int,
           format: Annotated[ExportFormat, typer.Option(help="torchscript | onnx | state-dict | json")],
           out: Annotated[Path, typer.Option(help="file to write (not overwritten without --force)")],
           db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
           space: Annotated[str | None, typer.Option(help=SPACE_HELP)] = None,
           trust_db: Annotated[bool, typer.Option("--trust-db", help=TRUST_HELP)] = False,
           force: Annotated[bool, typer.Option("--force", help="overwrite an existing --out file")] = False,
           ) -> None:
    """Export one trial's model."""
    from nas.results.export import check_out_path, export_model

    check_out_path(out, force=force, reads=[db])
    store, rec = open_study(db, study)
    t = store.get_trial(rec.id, trial)
    if format is not ExportFormat.json and str(t.state) != "COMPLETE":
        raise NasError(f"trial {t.number} of study {printable(rec.name)!r} is {t.state}"
                       f"{': ' + printable(t.error) if t.error else ''}; it has no trained model to "
                       "export (--format json writes its architecture)")
    weights = trial_weights(store, rec, t)
    arch = Architecture(t.architecture)
    model_space = None if format is ExportFormat.json else space_of(rec, space, trust_db)
    trained = export_model(model_space, arch, weights, format.value, out)
    if not trained and format is not ExportFormat.json:
        console.print("note: no trained weights are stored for this trial (e.g. a tabular benchmark); "
                      "the model has fresh weights")
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes)", markup=False)


def _print_csv(rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    print(buf.getvalue(), end="")


__all__ = ["NasError", "register"]

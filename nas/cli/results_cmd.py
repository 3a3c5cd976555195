"""Reading results: `nas studies`, `nas trials`, `nas best`, `nas show`, `nas export`."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nas.cli.common import (
    DB_HELP,
    console,
    dumps,
    fmt,
    metric_columns,
    open_study,
    space_of,
    trial_dict,
    trials_table,
)
from nas.errors import NasError
from nas.objectives import parse_constraints, parse_objectives
from nas.results import best_trials
from nas.space import Architecture
from nas.store import Store


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


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
            for s in Store.open(db, readonly=True).list_studies()]
    if format is Format.json:
        console.print_json(dumps(rows))
    elif format is Format.csv:
        _print_csv(rows)
    elif not rows:
        console.print(f"no studies in {db}: start one with nas search SPACE --db {db}")
    else:
        table = Table()
        for col in rows[0]:
            table.add_column(col)
        for r in rows:
            table.add_row(*(fmt(v) if not isinstance(v, list) else ", ".join(v) for v in r.values()))
        console.print(table)


def trials(study: str, db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
           format: Annotated[Format, typer.Option(help="table | json | csv")] = Format.table,
           state: Annotated[str | None, typer.Option(help="only COMPLETE, FAILED, PRUNED or RUNNING")] = None
           ) -> None:
    """List trials."""
    store, rec = open_study(db, study)
    ts = [t for t in store.trials(rec.id) if state is None or str(t.state) == state.upper()]
    if format is Format.json:
        print(dumps([trial_dict(t) for t in ts]))
    elif format is Format.csv:
        names = sorted({k for t in ts for k in t.metrics})
        _print_csv([{"number": t.number, "state": str(t.state), "arch_id": t.arch_id,
                     "architecture": Architecture(t.architecture).to_json(),
                     **{m: t.metrics.get(m, "") for m in names}, "error": t.error or ""} for t in ts])
    else:
        console.print(trials_table(ts, metric_columns(rec, ts), f"{rec.name}: {len(ts)} trials "
                                   "(* = predicted, not measured)"))


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
        console.print(f"trial {t.number}: {Architecture(t.architecture).to_json()}")


def show(study: str, trial: int, db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db") -> None:
    """Show one trial."""
    store, rec = open_study(db, study)
    t = store.get_trial(rec.id, trial)
    console.print(f"[bold]{rec.name} trial {t.number}[/bold] ({t.state}) arch {t.arch_id}")
    for label, value in t.architecture.items():
        console.print(f"  {label} = {value}")
    for name, value in sorted(t.metrics.items()):
        console.print(f"  [cyan]{name}[/cyan] {fmt(value)}{' (predicted)' if name in t.predicted else ''}")
    if t.error:
        console.print(f"[red]error:[/red] {t.error}")
    model = space_of(rec).build(t.architecture)
    console.print(str(model), markup=False, highlight=False)


def export(study: str, trial: int,
           format: Annotated[ExportFormat, typer.Option(help="torchscript | onnx | state-dict | json")],
           out: Annotated[Path, typer.Option(help="file to write")],
           db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db") -> None:
    """Export one trial's model."""
    from nas.export import export_model

    store, rec = open_study(db, study)
    t = store.get_trial(rec.id, trial)
    space = space_of(rec)
    weights = store.get_weights(rec.space_fingerprint, t.arch_id, "trained")
    trained = export_model(space, Architecture(t.architecture), weights, format.value, out)
    if not trained and format is not ExportFormat.json:
        console.print("note: no trained weights are stored for this trial (e.g. a tabular benchmark); "
                      "the model has fresh weights")
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes)")


def _print_csv(rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    print(buf.getvalue(), end="")


__all__ = ["NasError", "register"]

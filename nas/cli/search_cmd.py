"""`nas search`: run or resume a study, with a live progress view."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nas.cli.common import DB_HELP, console, fmt, metric_columns, open_store, printable, trials_table
from nas.errors import NasError
from nas.objectives import parse_constraints, parse_objectives
from nas.references import absolute_ref, load_space_and_args, parse_kv
from nas.search import check_searcher

if TYPE_CHECKING:
    from nas.run import Progress as LoopProgress

EXAMPLE = """Examples:

  nas search search_spaces.convnet:space --dataset digits --budget 20 --epochs 8

  nas search my_space.py:space --space-arg width=32 --searcher random --objective accuracy:max
      --constraint 'params<=50000' --workers 2 --db results.db --study mine

  nas search search_spaces.nb201:space --dataset nb201-cifar10 --budget 100
"""


def register(app: typer.Typer) -> None:
    app.command("search", help="Search a space for the best architectures.\n\n" + EXAMPLE
                )(search_command)


def search_command(
    space: Annotated[str, typer.Argument(help="path/to/file.py:function or package.module:function")],
    space_arg: Annotated[list[str], typer.Option(help="argument of the space function, key=value")] = [],
    dataset: Annotated[str, typer.Option(
        help="digits | fashion-mnist | cifar10 | nb201-cifar10 | nb201-cifar100 | "
             "nb201-imagenet16-120 | file.py:fn")] = "digits",
    data_dir: Annotated[str | None, typer.Option(help="folder of the data set (or the NB201 table)")] = None,
    searcher: Annotated[str, typer.Option(help="random | mcts | smbo | evolution | nsga2 | linas | "
                                                "optuna:<sampler> (tpe, gp, cmaes, nsga2, ...)")] = "random",
    searcher_arg: Annotated[list[str], typer.Option(help="searcher setting, key=value")] = [],
    budget: Annotated[int, typer.Option(min=1, help="number of architectures to evaluate")] = 20,
    epochs: Annotated[int, typer.Option(min=1, help="training epochs per architecture")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="training batch size")] = 64,
    lr: Annotated[float, typer.Option(help="learning rate")] = 0.05,
    optimizer: Annotated[str, typer.Option(help="sgd | adam | adamw")] = "sgd",
    max_train: Annotated[int | None, typer.Option(help="subsample the training set")] = None,
    objective: Annotated[list[str], typer.Option(help="metric:max|min, repeatable")] = ["accuracy:max"],
    constraint: Annotated[list[str], typer.Option(help="bound such as params<=1e6, repeatable")] = [],
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N")] = "cpu",
    db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
    study: Annotated[str | None, typer.Option(help="study name (default: space-searcher-seed)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the searcher and of training")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="worker processes evaluating in parallel")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="continue an existing study")] = False,
    latency: Annotated[str, typer.Option(
        help="predicted (from this device's profile, see nas profile) | measured: how latency_ms "
             "objectives and constraints are evaluated; the final front is always measured")] = "predicted",
    latency_batch: Annotated[int, typer.Option(min=1, help="batch size of latency figures")] = 1,
    latency_threads: Annotated[int, typer.Option(
        min=1, help="CPU threads of latency figures (measured, and the profile predicted from): 1 is the "
             "steadiest on a shared machine; match how the model will be served")] = 1,
    profile: Annotated[str | None, typer.Option(help="device profile JSON (default: this device's)")] = None,
    prune: Annotated[float | None, typer.Option(
        help="prune every trained candidate to this sparsity and record pruned_accuracy, sparsity")] = None,
    prune_method: Annotated[str, typer.Option(help="dp | lamp | global | uniform | erk")] = "dp",
    prune_structured: Annotated[bool, typer.Option(
        "--prune-structured", help="channel pruning: --prune is the share of latency to remove; the "
        "DP's costs come from --profile (this device's by default) if it exists, else are measured")] = False,
    quantization: Annotated[str, typer.Option(
        help="none | per-layer | global: search a precision per layer (int8 on CPU, fp16/bf16 on GPU) "
             "with the architecture, quantized after training (SimQ-NAS)")] = "none",
) -> None:
    objs, cons = parse_objectives(objective), parse_constraints(constraint)  # before anything loads
    check_searcher(searcher)
    # torch and the search stack load only once a search runs: `nas --help` and the readers stay quick
    from nas.evaluate import TrainConfig
    from nas.run import search
    from nas.run.assemble import StudySettings, assemble, base_evaluator, quantization_arg
    from nas.run.latency_source import uses_latency

    objectives, constraints = [str(o) for o in objs], [str(c) for c in cons]
    settings = StudySettings(
        dataset=dataset, data_dir=data_dir, max_train=max_train, quantization=quantization, prune=prune,
        prune_method=prune_method, prune_structured=prune_structured, latency=latency,
        latency_batch=latency_batch, latency_threads=latency_threads, profile=profile,
        train=None if dataset.lower().startswith("nb201-") else TrainConfig(
            epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, device=device))
    base = base_evaluator(settings, objectives, constraints)
    defaults = {"num_classes": base.num_classes(), "input_shape": base.input_shape()}
    args = parse_kv(space_arg, "--space-arg")
    if quantization_arg(settings) is not None:
        args["quantization"] = quantization_arg(settings)
    sp, space_args = load_space_and_args(space, args, defaults)
    space = absolute_ref(space)  # stored: `nas show --trust-db` must find it from any folder
    stack = assemble(settings, sp, objectives, constraints, base=base, seed=seed)
    name = study or f"{sp.name or space.rpartition(':')[2]}-{searcher}-{seed}"
    console.print(f"study {printable(name)}: {space} ({sp.size():,} architectures), {searcher}, "
                  f"budget {budget}, {', '.join(objectives)}, data {dataset}, db {db}", markup=False)
    with _progress_view(budget) as update:
        result = search(sp, evaluator=stack.evaluator, searcher=searcher, objectives=objectives,
                        constraints=constraints, budget=budget, storage=db, study=name, seed=seed,
                        workers=workers, resume=resume,
                        searcher_args=parse_kv(searcher_arg, "--searcher-arg"),
                        space_ref=space, space_args=space_args, on_progress=update, estimate=stack.estimate)
    _report(result, db, space)
    channel_pruned = prune is not None and prune_structured  # pruned: measured already
    if uses_latency(objs, cons) and not (settings.is_table or channel_pruned):
        _remeasure(result, sp, device, latency_batch, latency_threads, db)


class _progress_view:  # noqa: N801 - used as a context manager
    """A rich progress bar showing trials done, best so far, Pareto front size and ETA."""

    def __init__(self, budget: int) -> None:
        self.bar = Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                            console=console, transient=False)
        self.task = self.bar.add_task("search", total=budget, status="")

    def __enter__(self):
        self.bar.start()
        return self.update

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, p: LoopProgress) -> None:
        best = p.best[0].metrics if p.best else {}
        shown = ", ".join(f"{k} {fmt(v)}" for k, v in list(best.items())[:1])
        status = f"best {shown or '-'}" + (f" | front {len(p.best)}" if len(p.best) > 1 else "")
        if p.last is not None and str(p.last.state) == "FAILED":
            status += f" | trial {p.last.number} failed"
        self.bar.update(self.task, completed=p.done, status=status)


def _remeasure(result, sp, device: str, batch: int, threads: int, db: str) -> None:
    """Measure the final front's latency again and show it beside the figure the search used."""
    from nas.run.remeasure import remeasure_front

    front = remeasure_front(open_store(db), result.study, sp, result.objectives, result.constraints,
                            device=device, batch_size=batch, threads=threads)
    bounds = [c for c in result.constraints if c.name == "latency_ms"]
    console.print(f"final front re-measured on {device} at batch {batch}"
                  f"{f', {threads} thread(s)' if device == 'cpu' else ''}:")
    for t in front:
        measured = t.metrics["latency_ms_measured"]
        ok = all(c.satisfied({"latency_ms": measured}) for c in bounds)
        console.print(f"  trial {t.number}: latency_ms {fmt(t.metrics['latency_ms'])}"
                      f"{' (predicted)' if 'latency_ms' in t.predicted else ''}, measured {fmt(measured)}"
                      + ("" if not bounds else ("  meets " if ok else "  VIOLATES ") + str(bounds[0])))


def _report(result, db: str, space: str) -> None:
    # shell-quoted, so each printed command can be pasted as it is (names may hold spaces, quotes)
    study, db, space = (printable(shlex.quote(x)) for x in (result.study.name, db, space))
    best = result.best()
    if not best:
        raise NasError(f"study {study} has no completed feasible trial; see nas trials {study} --db {db}")
    title = "best architecture" if len(best) == 1 else f"Pareto front ({len(best)} architectures)"
    console.print(trials_table(best, metric_columns(result.study, result.trials), title))
    failed = sum(str(t.state) == "FAILED" for t in result.trials)
    if failed or result.n_skipped:
        console.print(f"{failed} trial(s) failed; {result.n_skipped} candidate(s) skipped as infeasible")
    n = best[0].number
    console.print(f"\nlook closer:  nas show {study} {n} --db {db} --space {space}\n"
                  f"export it:    nas export {study} {n} --format torchscript --out model.pt "
                  f"--db {db} --space {space}\n"
                  f"all trials:   nas trials {study} --db {db}\n"
                  f"dashboard:    nas dashboard --db {db}", markup=False, highlight=False, soft_wrap=True)

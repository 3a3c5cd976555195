"""`nas prune`: prune a stored trial's trained model and report (or write) the result."""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from nas.cli.common import (
    DB_HELP,
    SPACE_HELP,
    TRUST_HELP,
    console,
    dumps,
    fmt,
    open_study,
    printable,
    space_of,
)
from nas.errors import NasError
from nas.results.weights import trial_weights
from nas.space import Architecture
from nas.store import StudyRecord, TrialRecord

if TYPE_CHECKING:  # imported where it is used: torch loads only when a pruning runs
    from nas.evaluate.train_evaluator import TrainEvaluator
    from nas.store import Store

PRUNE_HELP = (
    "Prune a trial's trained model and print its validation accuracy, sparsity and per-layer "
    "allocation. The database is only read.\n\n"
    "Example: nas prune demo 3 --sparsity 0.9 --method dp --finetune-epochs 1 --out pruned.pt\n\n"
    "--structured removes whole channels instead, for a real CPU speed-up: --sparsity is then the "
    "share of the dense latency to remove, the DP's cost is the latency predictor's estimate when "
    "this device has a profile (else a latency table measured now), and the pruned model's "
    "latency is measured."
)


class Format(StrEnum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add the `prune` command to the `nas` app."""
    app.command("prune", help=PRUNE_HELP)(prune_trial)


def prune_trial(
    study: Annotated[str, typer.Argument(help="study name")],
    trial: Annotated[int, typer.Argument(help="trial number")],
    sparsity: Annotated[float, typer.Option(help="fraction of prunable weights to remove, in (0, 1)")] = 0.9,
    method: Annotated[str, typer.Option(
        help="dp | lamp | global | uniform | erk (with --structured: dp | uniform)")] = "dp",
    structured: Annotated[bool, typer.Option(
        "--structured", help="channel pruning under a latency budget of (1 - sparsity) x dense")] = False,
    latency: Annotated[str, typer.Option(
        help="--structured cost: auto (predictor if this device has a profile, else measured) | "
             "predicted | measured")] = "auto",
    profile: Annotated[str | None, typer.Option(
        help="device profile JSON for --structured (default: this device's)")] = None,
    finetune_epochs: Annotated[int, typer.Option(help="fine-tuning epochs after pruning")] = 0,
    out: Annotated[Path | None, typer.Option(
        help="write the pruned model: TorchScript if FILE ends in .pt, else a safetensors state dict "
             "(not overwritten without --force)")
    ] = None,
    format: Annotated[Format, typer.Option(help="table | json")] = Format.table,
    calib_samples: Annotated[int, typer.Option(help="training examples in the calibration batch")] = 256,
    seed: Annotated[int, typer.Option(help="seed of the fine-tuning")] = 0,
    db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
    space: Annotated[str | None, typer.Option(help=SPACE_HELP)] = None,
    dataset: Annotated[str | None, typer.Option(
        help="the study's data set, restated (needed when it is a loader file.py:function)")] = None,
    data_dir: Annotated[str | None, typer.Option(
        help="folder of the study's data set (needed for cifar10: its batches are pickles, read "
             "only from a folder you name)")] = None,
    trust_db: Annotated[bool, typer.Option("--trust-db", help=TRUST_HELP)] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing --out file")] = False,
) -> None:
    """Prune one trial's trained model."""
    import torch

    from nas.compress.prune import make_permanent
    from nas.evaluate.prune_evaluator import PruneEvaluator
    from nas.evaluate.train_loop import evaluate_model
    from nas.results.export import check_out_path, load_weights

    if out is not None:
        check_out_path(out, force=force, reads=[db])
    torch.set_num_threads(1)  # repeatable results; pruning a trained model is small work
    store, rec = open_study(db, study)
    t = store.get_trial(rec.id, trial)
    weights = _trained_weights(store, rec, t)
    base = _train_evaluator(rec.evaluator, dataset, data_dir, trust_db)
    pruner = PruneEvaluator(base, sparsity=sparsity, method=method,
                            finetune_epochs=finetune_epochs, calib_samples=calib_samples,
                            structured=structured, latency=latency, profile=profile)
    pruner.describe()  # checks sparsity and method before the data are loaded
    model = space_of(rec, space, trust_db).build(Architecture(t.architecture))
    load_weights(model, weights)
    splits = pruner.base.splits()
    _, dense_acc = evaluate_model(model, splits.x_val, splits.y_val)
    result, metrics, extra = pruner.prune_model(model, seed=seed)
    report: dict[str, Any] = {
        "study": rec.name, "trial": t.number, "arch_id": t.arch_id, "method": result.method,
        "target_sparsity": sparsity, "finetune_epochs": finetune_epochs, "accuracy": dense_acc,
        **metrics, "kept": result.kept, "total": result.total,
        "allocation": {k: float(v) for k, v in result.allocation.items()},
        "out": str(out) if out is not None else None,
    }
    if structured:
        report |= {k: extra[k] for k in ("latency_budget_ms", "prune_latency_cost", "prune_channels")}
    if out is not None:
        _write(make_permanent(result.model).eval(), out, splits.x_val[:1])
    if format is Format.json:
        print(dumps(report))
    else:
        _print_table(report)


def _trained_weights(store: Store, rec: StudyRecord, t: TrialRecord) -> bytes:
    """Return the trial's stored trained weights, or raise a NasError saying there are none."""
    weights = trial_weights(store, rec, t)
    if weights is None:
        raise NasError(
            f"trial {t.number} of study {rec.name!r} has no trained weights to prune (state "
            f"{t.state}; a tabular-benchmark study such as nb201-* trains nothing); prune a "
            "trial of a study that trained its models, e.g. one run with --dataset digits"
        )
    return weights


def _train_evaluator(description: dict, dataset: str | None, data_dir: str | None,
                     trust_db: bool) -> TrainEvaluator:
    """Return the training evaluator that a study's stored evaluator description names.

    A database is data: a loader function it names is imported, and CIFAR-10 pickles are read,
    only when the user restates them on the command line (or passes --trust-db).
    """
    from nas.evaluate import TrainConfig, make_evaluator
    from nas.evaluate.datasets import is_loader_spec
    from nas.evaluate.train_evaluator import TrainEvaluator

    desc = description
    while isinstance(desc.get("base"), dict):  # prune / quant evaluators wrap a training one
        desc = desc["base"]
    if desc.get("kind") != "train" or "dataset" not in desc:
        raise NasError(f"the study's evaluator ({desc.get('kind') or desc.get('name')!r}) does not "
                       "train on a data set, so there is no validation data to prune against")
    name, folder = dataset or desc["dataset"], data_dir or desc.get("data_dir")
    if not trust_db and is_loader_spec(name) and dataset is None:
        raise NasError(f"the study's data set is code ({printable(name)}): pass --dataset "
                       f"{shlex.quote(name)} to run it, or --trust-db")
    if not trust_db and name == "cifar10" and data_dir is None:
        raise NasError("CIFAR-10 batches are pickles, read only from a folder you name: pass --data-dir "
                       "DIR (your cifar-10-batches-py), or --trust-db to use the stored one")
    evaluator = make_evaluator(
        name, data_dir=folder, config=TrainConfig(**desc.get("config", {})),
        max_train=desc.get("max_train"), data_seed=desc.get("data_seed", 0), measure_latency=False,
    )
    if not isinstance(evaluator, TrainEvaluator):  # a "train" description always makes one
        raise NasError(f"data set {desc['dataset']!r} does not give a training evaluator")
    return evaluator


def _write(model: Any, out: Path, example: Any) -> None:
    """Write ``model`` to ``out``: TorchScript for .pt, a safetensors state dict otherwise."""
    import torch
    from safetensors.torch import save_file

    try:
        if out.suffix == ".pt":
            torch.jit.save(torch.jit.script(model), str(out))
        else:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
    except OSError as e:
        raise NasError(f"cannot write {str(out)!r}: {e.strerror or e}") from e


def _print_table(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]{report['study']} trial {report['trial']}[/bold] pruned by {report['method']}: "
        f"sparsity {report['sparsity']:.4f} (target {report['target_sparsity']}), "
        f"{report['kept']:,} of {report['total']:,} prunable weights kept"
    )
    console.print(f"validation accuracy {fmt(report['pruned_accuracy'])} pruned, "
                  f"{fmt(report['accuracy'])} dense; test accuracy {fmt(report['pruned_test_accuracy'])}"
                  + (f" after {report['finetune_epochs']} fine-tuning epoch(s)"
                     if report["finetune_epochs"] else ""))
    if "latency_ms" in report:
        predicted = report.get("latency_ms_predicted")
        console.print(
            f"latency {report['latency_ms']:.3f} ms measured ({report['latency_ratio']:.2f}x the dense "
            f"{report['latency_ms_dense']:.3f} ms)"
            + (f", {predicted:.3f} ms predicted" if predicted is not None else "")
            + f"; budget {report['latency_budget_ms']:.3f} ms on the {report['prune_latency_cost']}'s "
            "scale, which set the allocation's costs")
    structured = "prune_channels" in report
    table = Table(title="per-group channels kept" if structured else "per-layer allocation")
    table.add_column("group" if structured else "layer")
    table.add_column("kept fraction" if structured else "pruned", justify="right")
    for layer, ratio in report["allocation"].items():
        table.add_row(layer, f"{ratio:.3f}")
    console.print(table)
    if report["out"]:
        console.print(f"wrote {report['out']} ({Path(report['out']).stat().st_size:,} bytes)")

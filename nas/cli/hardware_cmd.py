"""`nas profile` (measure this device's kernels) and `nas latency` (one architecture's latency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from nas.cli.common import DB_HELP, console, open_store
from nas.errors import NasError
from nas.references import load_space, parse_kv
from nas.space import Architecture


def register(app: typer.Typer) -> None:
    app.command("profile", help="Profile this device's kernels for the latency predictor.\n\n"
                                "Example: nas profile --space search_spaces.convnet:space --batch 1 "
                                "--batch 32 --time-budget 5\n\n"
                                "int8 kernels too (for --quantization searches): nas profile --int8; "
                                "added to this device's existing profile: nas profile --int8 --extend"
                )(profile)
    app.command("latency", help="Predict (and with --measure, measure) one architecture's latency.\n\n"
                                "Example: nas latency search_spaces.convnet:space --arch '{...}' --measure"
                )(latency)


def profile(
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N")] = "cpu",
    space: Annotated[list[str], typer.Option(help="space whose kernels to profile, repeatable")] = [
        "search_spaces.convnet:space"],
    samples: Annotated[int, typer.Option(min=1, help="architectures sampled per space")] = 20,
    batch: Annotated[list[int], typer.Option(help="batch size, repeatable")] = [1, 32],
    threads: Annotated[int, typer.Option(help="CPU threads (searches measure and predict with 1 by "
                                         "default: the steadiest figure on a shared machine)")] = 1,
    time_budget: Annotated[float, typer.Option(help="minutes of measuring (> 0)")] = 5.0,
    out: Annotated[Path | None, typer.Option(
        help="profile JSON (default: <device>.json in $NAS_PROFILES_DIR or ~/.local/share/nas/profiles)")
                   ] = None,
    db: Annotated[str | None, typer.Option(help=DB_HELP + " to keep the raw measurements in")] = "nas.db",
    seed: Annotated[int, typer.Option(help="seed of the architecture samples")] = 0,
    repeats: Annotated[int, typer.Option(help="samples per timing (their median is kept); more is "
                                         "steadier on a busy machine but profiles fewer kernels")] = 5,
    int8: Annotated[bool, typer.Option("--int8", help="also profile int8 kernels and fp32<->int8 "
                                       "transitions (random per-layer policies of the samples)")] = False,
    extend: Annotated[bool, typer.Option("--extend", help="with --int8: keep the existing profile's "
                                         "float measurements and add int8 ones (the whole budget)")] = False,
) -> None:
    from nas.hardware import profile_path
    from nas.hardware.profile import DeviceProfile  # torch loads only when a command needs it
    from nas.predictors import extend_int8, profile_device

    if extend and not int8:
        raise NasError("--extend adds int8 measurements to a profile; give it with --int8")
    if threads < 1:
        raise NasError(f"--threads {threads}: give a positive thread count")
    if repeats < 1:
        raise NasError(f"--repeats {repeats}: give at least 1 sample per timing")
    if not time_budget > 0:
        raise NasError(f"--time-budget {time_budget}: give the minutes of measuring, more than 0")
    models = []
    for ref in space:
        sp = load_space(ref)
        models += [(f"{ref}#{i}", sp.build(sp.sample(seed + i)), sp.input_shape) for i in range(samples)]
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(f"profiling {device} for {time_budget:g} min", total=None)
        report = lambda done, total, msg: bar.update(task, description=msg)  # noqa: E731
        if extend:
            prof = extend_int8(DeviceProfile.load(out or profile_path(device, threads)), models,
                               time_budget_s=time_budget * 60, progress=report, seed=seed,
                               repeats=repeats)
        else:
            prof = profile_device(models, device=device, batch_sizes=tuple(batch),
                                  time_budget_s=time_budget * 60, seed=seed, progress=report,
                                  threads=threads if device == "cpu" else None, repeats=repeats,
                                  precisions=("fp32", "int8") if int8 else ("fp32",))
    path = prof.save(out)  # the user's profile folder by default; shipped profiles stay as they are
    # the store keeps the full device identity with every raw measurement
    rows = [{**r, "device": prof.identity.to_json()} for r in prof.measurements]
    if extend:  # only the new rows go to the store; the float ones are there already
        rows = [r for r in rows if r["config"].get("precision") == "int8" or r["config"].get("nhwc")
                or r["kind"] in ("quantize", "dequantize")]
    stored = open_store(db).add_measurements(rows) if db else 0
    console.print(f"{len(prof.measurements)} kernel and {len(prof.models)} whole-model measurements of "
                  f"{prof.device_id}\nprofile: {path}")
    if db:
        console.print(f"raw measurements: {stored} rows in {db}")


def latency(
    space: Annotated[str, typer.Argument(help="path/to/file.py:function or package.module:function")],
    arch: Annotated[str, typer.Option(help="the architecture as JSON (e.g. from nas trials --format json)")],
    space_arg: Annotated[list[str], typer.Option(help="argument of the space function, key=value")] = [],
    batch: Annotated[int, typer.Option(help="batch size")] = 1,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N")] = "cpu",
    threads: Annotated[int, typer.Option(help="CPU threads (searches measure and predict with 1 by "
                                         "default: the steadiest figure on a shared machine)")] = 1,
    profile: Annotated[Path | None, typer.Option(help="device profile (default: this device's)")] = None,
    measure: Annotated[bool, typer.Option("--measure", help="also measure it (median of repeats)")] = False,
) -> None:
    from nas.hardware import profile_path
    from nas.run.latency_source import LatencyModel

    sp = load_space(space, parse_kv(space_arg, "--space-arg"))
    try:
        a = sp.validate(Architecture.from_json(arch))
    except json.JSONDecodeError as e:
        raise NasError(f"--arch is not JSON: {e}") from e
    model = LatencyModel(sp, profile or profile_path(device, threads), batch)
    predicted = model.predict(a)
    line = f"predicted {predicted:.3f} ms"
    if measure:
        from nas.hardware import measure_latency

        built = sp.build(a)
        if sp.quantization:  # measured as it runs: quantized per the architecture's policy
            from nas.evaluate.quant_evaluator import as_quantized

            built = as_quantized(built, sp, a)
        measured = measure_latency(built, sp.input_shape, batch_size=batch, device=device,
                                   threads=threads if device == "cpu" else None)
        line += f", measured {measured:.3f} ms ({(predicted - measured) / measured:+.1%})"
    console.print(f"{a.id} at batch {batch} on {device}: {line}")

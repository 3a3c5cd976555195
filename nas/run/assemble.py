"""One way to assemble a study's evaluator stack, shared by the CLI and the Python API.

    settings = StudySettings(dataset="digits", train=TrainConfig(epochs=5), quantization="per-layer")
    objectives = ["accuracy:max", "latency_ms:min"]
    base = base_evaluator(settings, objectives)           # the data set decides shapes and classes
    space = my_space(quantization=quantization_arg(settings), input_shape=base.input_shape())
    stack = assemble(settings, space, objectives, base=base)
    nas.run.search(space, evaluator=stack.evaluator, estimate=stack.estimate, ...)

The stack, innermost first: a `TrainEvaluator` (or the NAS-Bench-201 table), `QuantEvaluator` when
the space searches precisions, `PruneEvaluator` when every candidate is pruned, `PredictedLatency`
when `latency_ms` is an objective or constraint and is predicted from a device profile. Everything
checkable is checked here, before the first trial: the device, the data, the profile, the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import EvaluationError, NasError, SearchError
from nas.evaluate import DeclaresMetrics, Evaluator, TrainConfig, make_evaluator
from nas.hardware import DEFAULT_THREADS, profile_path
from nas.objectives import Constraint, Objective, parse_constraints, parse_objectives
from nas.run.latency_source import LatencyModel, PredictedLatency, uses_latency
from nas.space import Architecture, Space

QUANTIZATION = ("none", "per-layer", "global")
LATENCY_SOURCES = ("predicted", "measured")


@dataclass(frozen=True)
class StudySettings:
    """What a study's evaluator stack is made of (the CLI's options, as data)."""

    dataset: str = "digits"
    data_dir: str | None = None
    train: TrainConfig | None = None  # None: the default training, or none for a tabular benchmark
    max_train: int | None = None
    quantization: str = "none"
    prune: float | None = None
    prune_method: str = "dp"
    prune_structured: bool = False
    latency: str = "predicted"
    latency_batch: int = 1
    latency_threads: int = DEFAULT_THREADS
    profile: str | None = None

    @property
    def is_table(self) -> bool:
        """Whether the data set is a lookup table (NAS-Bench-201): nothing is trained."""
        return self.dataset.lower().startswith("nb201-")

    @property
    def device(self) -> str:
        """The device training runs on."""
        return self.train.device if self.train is not None else "cpu"


@dataclass
class Stack:
    """The assembled evaluator, and the metrics known before training (for constraint checks)."""

    evaluator: Evaluator
    estimate: Callable[[Architecture], Mapping[str, float]] | None = None


def check_settings(settings: StudySettings) -> None:
    """Raise a NasError for any setting that cannot work, before anything loads or trains."""
    # Messages name the command-line options: the settings mirror them one to one.
    if settings.quantization not in QUANTIZATION:
        raise NasError(f"--quantization {settings.quantization!r}: valid are {', '.join(QUANTIZATION)}")
    if settings.latency not in LATENCY_SOURCES:
        raise NasError(f"--latency {settings.latency!r}: valid are {', '.join(LATENCY_SOURCES)}")
    if settings.latency_threads < 1:
        raise NasError(f"--latency-threads {settings.latency_threads}: give a positive thread count")
    if settings.latency_batch < 1:
        raise NasError(f"--latency-batch {settings.latency_batch}: give a positive batch size")
    if settings.prune is not None and not 0 < settings.prune < 1:
        raise NasError(f"--prune {settings.prune}: give the share to remove, between 0 and 1")
    if settings.max_train is not None and settings.max_train < 1:
        raise NasError(f"--max-train {settings.max_train}: give a positive number of examples")
    if settings.is_table and settings.train is not None:
        raise EvaluationError(f"{settings.dataset!r} is a lookup table: it takes no training settings")
    _check_device(settings.device)


def _check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise EvaluationError(f"device {device!r}: this machine has no CUDA GPU that torch can use; "
                                  "train with --device cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise EvaluationError(f"device {device!r}: this machine has {torch.cuda.device_count()} "
                                  "GPU(s), numbered from 0")


def base_evaluator(settings: StudySettings, objectives: Sequence[str] = ("accuracy:max",),
                   constraints: Sequence[str] = ()) -> Evaluator:
    """Return the innermost evaluator: training on the data set, or the tabular benchmark."""
    check_settings(settings)
    if settings.is_table:
        return make_evaluator(settings.dataset, data_dir=settings.data_dir)
    extra: dict[str, Any] = {"latency_batch": settings.latency_batch,
                             "latency_threads": settings.latency_threads,
                             # a predicted figure replaces the timer
                             "measure_latency": not predicts_latency(settings, objectives, constraints)}
    if settings.max_train is not None:
        extra["max_train"] = settings.max_train
    return make_evaluator(settings.dataset, data_dir=settings.data_dir,
                          config=settings.train or TrainConfig(), **extra)


def quantization_arg(settings: StudySettings) -> dict | None:
    """Return the reserved `quantization` space argument that the settings ask for, or None."""
    if settings.quantization == "none":
        return None
    # int8 kernels exist on the CPU only; a GPU searches half precisions instead
    options = ["fp32", "int8"] if settings.device == "cpu" else ["fp32", "fp16", "bf16"]
    return {"options": options, "granularity": "layer" if settings.quantization == "per-layer" else "global"}


def predicts_latency(settings: StudySettings, objectives: Sequence[str], constraints: Sequence[str]) -> bool:
    """Return whether latency_ms is predicted from a profile (not measured) in this study."""
    # Channel pruning changes the latency after training: the pruned model is always measured,
    # and a prediction of the dense architecture would stand in for the wrong model.
    channel_pruned = settings.prune is not None and settings.prune_structured
    return (uses_latency(parse_objectives(objectives), parse_constraints(constraints))
            and settings.latency == "predicted" and not (settings.is_table or channel_pruned))


def check_metrics(evaluator: Evaluator, objectives: Sequence[Objective],
                  constraints: Sequence[Constraint]) -> None:
    """Raise a SearchError now if an objective or constraint names a metric the evaluator never gives."""
    if not isinstance(evaluator, DeclaresMetrics):
        return  # a user's evaluator that does not say: checked after the first trial instead
    given = evaluator.metric_names()
    missing = [n for n in dict.fromkeys([o.name for o in objectives] + [c.name for c in constraints])
               if n not in given]
    if missing:
        raise SearchError(f"{', '.join(missing)}: not a metric of this study's evaluator "
                          f"({evaluator.describe().get('kind', evaluator.name)}); it gives "
                          f"{', '.join(sorted(given))}")


def assemble(settings: StudySettings, space: Space, objectives: Sequence[str],
             constraints: Sequence[str] = (), *, base: Evaluator | None = None, seed: int = 0) -> Stack:
    """Return the evaluator stack for `space` under `settings`, checked before any training."""
    objs, cons = parse_objectives(objectives), parse_constraints(constraints)
    predicted = predicts_latency(settings, objectives, constraints)
    evaluator = base if base is not None else base_evaluator(settings, objectives, constraints)
    if settings.quantization != "none":
        from nas.evaluate.quant_evaluator import QuantEvaluator

        if not space.quantization:
            raise NasError(f"quantization {settings.quantization!r} needs a space with a quantization "
                           "policy: build it with quantization_arg(settings)")
        # an int8 policy's latency is measured even when predicted: the int8 predictor is the less
        # certain one, and the study keeps both figures (latency_ms_measured beside the prediction)
        evaluator = QuantEvaluator(evaluator, policy_of=space.quant_policy,
                                   latency_batch=settings.latency_batch)
    if settings.prune is not None:
        from nas.evaluate.prune_evaluator import PruneEvaluator

        evaluator = PruneEvaluator(evaluator, sparsity=settings.prune, method=settings.prune_method,
                                   structured=settings.prune_structured, profile=settings.profile)
        evaluator.describe()  # checks the method and the base before any training
    if not predicted:
        check_metrics(evaluator, objs, cons)
        return Stack(evaluator)
    model = LatencyModel(space, settings.profile or profile_path(settings.device, settings.latency_threads),
                         settings.latency_batch)
    model.predict(space.sample(seed))  # a missing profile is reported now, before any training
    stack = Stack(PredictedLatency(evaluator, model), model.estimate)
    check_metrics(stack.evaluator, objs, cons)
    return stack

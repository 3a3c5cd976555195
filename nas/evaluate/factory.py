"""One place that turns a ``--dataset`` value into an evaluator."""

from __future__ import annotations

import os
from pathlib import Path

from nas.errors import EvaluationError
from nas.evaluate.base import Evaluator
from nas.evaluate.datasets import BUILTIN_DATASETS, is_loader_spec
from nas.evaluate.nb201 import TABLE_FILE, NB201Evaluator
from nas.evaluate.train_evaluator import TrainEvaluator
from nas.evaluate.train_loop import TrainConfig

NB201_NAMES = {
    "nb201-cifar10": "cifar10",
    "nb201-cifar100": "cifar100",
    "nb201-imagenet16-120": "ImageNet16-120",
}
# Beside the project's root, as the shared benchmark folder is laid out (never copied inside).
SHARED_NB201_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "nb201"
NB201_ENV = "NAS_NB201_DIR"


def nb201_dir() -> Path:
    """Return the table folder used without --data-dir: $NAS_NB201_DIR, else the shared folder."""
    return Path(os.environ[NB201_ENV]).expanduser() if os.environ.get(NB201_ENV) else SHARED_NB201_DIR



def valid_dataset_names() -> list[str]:
    """Return the data set names ``make_evaluator`` accepts (besides ``file.py:function``)."""
    return [*BUILTIN_DATASETS, *NB201_NAMES]


def make_evaluator(
    dataset: str, *, data_dir: str | None = None, config: TrainConfig | None = None, **kw
) -> Evaluator:
    """Return the evaluator for ``dataset``: a TrainEvaluator, or an NB201Evaluator.

    ``data_dir`` is the data folder for training data sets and the table folder for
    ``nb201-*`` (default: ``../shared/benchmarks/nb201`` beside the repository, if present).
    Other keywords go to the evaluator's constructor.
    """
    key = dataset.lower()
    if key in NB201_NAMES:
        if config is not None:
            raise EvaluationError(f"{dataset!r} is a lookup table: it takes no training config")
        if data_dir is None:
            folder = nb201_dir()
            if not (folder / TABLE_FILE).is_file():
                raise EvaluationError(
                    f"{dataset!r} needs the NAS-Bench-201 table: pass `--data-dir DIR` or set "
                    f"{NB201_ENV}=DIR with {TABLE_FILE} in DIR (looked in {str(folder)!r})"
                )
            data_dir = str(folder)
        return NB201Evaluator(NB201_NAMES[key], data_dir, **kw)
    if dataset in BUILTIN_DATASETS or is_loader_spec(dataset):
        return TrainEvaluator(dataset, data_dir=data_dir, config=config or TrainConfig(), **kw)
    raise EvaluationError(
        f"unknown data set {dataset!r}; valid: {', '.join(valid_dataset_names())}, "
        "or a loader 'path/to/file.py:function'"
    )

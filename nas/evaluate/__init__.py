"""Evaluators: train on a data set, or look up a tabular benchmark (NAS-Bench-201)."""

from nas.evaluate.base import (
    METRIC_NAMES,
    CachesWeights,
    DeclaresMetrics,
    EvalResult,
    Evaluator,
    TrialFailed,
)
from nas.evaluate.datasets import DataSplits, load_dataset
from nas.evaluate.factory import make_evaluator, valid_dataset_names
from nas.evaluate.model_metrics import count_flops, count_params, model_size_mb
from nas.evaluate.nb201 import NB201Evaluator, NB201Table, nb201_arch_from_str, nb201_arch_str
from nas.evaluate.train_evaluator import TrainEvaluator
from nas.evaluate.train_loop import TrainConfig, TrainResult, train

__all__ = [
    "METRIC_NAMES",
    "CachesWeights",
    "DeclaresMetrics",
    "DataSplits",
    "EvalResult",
    "Evaluator",
    "NB201Evaluator",
    "NB201Table",
    "TrainConfig",
    "TrainEvaluator",
    "TrainResult",
    "TrialFailed",
    "count_flops",
    "count_params",
    "load_dataset",
    "make_evaluator",
    "model_size_mb",
    "nb201_arch_from_str",
    "nb201_arch_str",
    "train",
    "valid_dataset_names",
]

"""The training evaluator: builds a model, trains it on a data set, measures its costs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import torch

from nas.evaluate.base import EpochCallback, EvalResult
from nas.evaluate.datasets import DataSplits, load_dataset
from nas.evaluate.model_metrics import (
    count_flops,
    count_params,
    model_size_mb,
)
from nas.evaluate.train_loop import TrainConfig, train
from nas.hardware import DEFAULT_THREADS
from nas.hardware.timing import measure_latency


class TrainEvaluator:
    """Trains each architecture from scratch on one data set and measures all its metrics.

    Metrics: ``accuracy`` / ``loss`` (validation, final epoch; accuracy as a fraction in
    [0, 1]), ``test_accuracy``, ``params``, ``flops``, ``size_mb``, ``train_seconds`` and, when
    ``measure_latency``, ``latency_ms`` (median, at ``latency_batch``, on ``config.device``,
    with ``latency_threads`` CPU threads: one by default, the steadiest figure on a busy machine,
    where a multi-threaded forward pass waits on preempted threads).
    The data are loaded on first use and kept on the instance; their split depends on
    ``data_seed`` only, so every trial of a study sees the same validation set.
    """

    name = "train"

    def __init__(
        self,
        dataset: str = "digits",
        *,
        data_dir: str | None = None,
        config: TrainConfig = TrainConfig(),
        latency_batch: int = 1,
        latency_threads: int | None = DEFAULT_THREADS,
        measure_latency: bool = True,
        max_train: int | None = None,
        data_seed: int = 0,
    ) -> None:
        self.dataset = dataset
        self.data_dir = data_dir
        self.config = config
        self.latency_batch = latency_batch
        self.latency_threads = latency_threads
        self.measure_latency = measure_latency
        self.max_train = max_train
        self.data_seed = data_seed
        self._splits: DataSplits | None = None

    def splits(self) -> DataSplits:
        """Return the data splits, loading them on the first call."""
        if self._splits is None:
            self._splits = load_dataset(
                self.dataset, data_dir=self.data_dir, seed=self.data_seed,
                max_train=self.max_train,
            )
        return self._splits

    def input_shape(self) -> tuple[int, ...]:
        """Return the (C, H, W) shape of one input example."""
        return self.splits().input_shape

    def num_classes(self) -> int:
        """Return the number of classes of the data set."""
        return self.splits().num_classes

    def metric_names(self) -> set[str]:
        """Return the names of the metrics every trial of this evaluator gives."""
        names = {"accuracy", "loss", "test_accuracy", "params", "flops", "size_mb", "train_seconds"}
        return names | ({"latency_ms"} if self.measure_latency else set())

    def describe(self) -> dict:
        """Return the data set and training settings as JSON-able data."""
        return {
            "kind": self.name,
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "max_train": self.max_train,
            "data_seed": self.data_seed,
            "latency_batch": self.latency_batch,
            "latency_threads": self.latency_threads,
            "measure_latency": self.measure_latency,
            "config": dataclasses.asdict(self.config),
        }

    def evaluate(
        self,
        build: Callable[[], torch.nn.Module],
        arch: Mapping[str, object],
        *,
        seed: int,
        on_epoch: EpochCallback | None = None,
    ) -> EvalResult:
        """Return the metrics of a freshly built model trained with ``seed``.

        Raises ``TrialFailed`` when training diverges.
        """
        splits = self.splits()
        config = dataclasses.replace(self.config, seed=seed)
        # The weights' initialisation is part of the trial: seed it, without touching the
        # caller's global RNG state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build()
        result = train(model, splits, config, on_epoch=on_epoch)
        metrics: dict[str, float] = {
            "accuracy": result.accuracy,
            "loss": result.loss,
            "test_accuracy": result.test_accuracy,
            "params": float(count_params(model)),
            "flops": float(count_flops(model, splits.input_shape)),
            "size_mb": model_size_mb(model),
            "train_seconds": result.train_seconds,
        }
        extra: dict[str, object] = {"epochs": config.epochs, "device": config.device}
        if self.measure_latency:
            metrics["latency_ms"] = measure_latency(model, splits.input_shape, batch_size=self.latency_batch,
                                                    device=config.device, threads=self.latency_threads)
        return EvalResult(
            metrics=metrics, curve=result.curve, state_dict=result.state_dict, extra=extra
        )

"""A small, fast, deterministic supervised training loop for candidate architectures."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from nas.errors import EvaluationError
from nas.evaluate.base import TrialFailed
from nas.evaluate.datasets import DataSplits

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant")
EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (frozen, so one instance can safely be a default argument)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs={self.epochs}: need >= 1"),
            (self.batch_size >= 1, f"batch_size={self.batch_size}: need >= 1"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr={self.lr}: need a finite value > 0"),
            (self.optimizer in OPTIMIZERS, f"optimizer={self.optimizer!r}: valid {OPTIMIZERS}"),
            (self.schedule in SCHEDULES, f"schedule={self.schedule!r}: valid {SCHEDULES}"),
            (0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing={self.label_smoothing}: need 0 <= value < 1"),
            (self.weight_decay >= 0, f"weight_decay={self.weight_decay}: need >= 0"),
            (_device_ok(self.device), f"device={self.device!r}: valid 'cpu', 'cuda', 'cuda:N'"),
        ]
        for ok, message in checks:
            if not ok:
                raise EvaluationError(f"invalid TrainConfig {message}")


def _device_ok(device: str) -> bool:
    if device in ("cpu", "cuda"):
        return True
    head, _, index = device.partition(":")
    return head == "cuda" and index.isdigit()


@dataclass
class TrainResult:
    """What one training run gave.

    ``accuracy`` and ``loss`` are the validation figures after the *final* epoch (not the best
    epoch: the weights returned, and the test figure, are the final ones, so all three agree).
    Accuracies are fractions in [0, 1]; ``loss`` is plain cross-entropy (no label smoothing).
    """

    accuracy: float
    loss: float
    test_accuracy: float
    train_seconds: float
    curve: list[dict] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)


def train(
    model: nn.Module,
    splits: DataSplits,
    config: TrainConfig,
    *,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Return the result of training ``model`` (in place) on ``splits`` with ``config``.

    Deterministic for ``config.seed`` on the CPU (at a fixed thread count): the shuffling uses
    its own generator, and dropout draws from torch's global generator, seeded here inside a
    forked RNG state so the caller's state is left alone. ``on_epoch`` gets each curve entry
    as it is made (it may raise, e.g. to prune; the exception propagates).
    Raises ``TrialFailed`` on a non-finite training loss.
    """
    device = _resolve_device(config.device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        return _train(model, splits, config, device, on_epoch)


def _resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EvaluationError(f"device={name!r} but no CUDA GPU is available here; use 'cpu'")
        if (device.index or 0) >= torch.cuda.device_count():
            raise EvaluationError(
                f"device={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return device


def _train(model, splits, config, device, on_epoch) -> TrainResult:
    start = time.perf_counter()
    model.to(device)
    data = (splits.x_train.to(device), splits.y_train.to(device))
    x_val, y_val = splits.x_val.to(device), splits.y_val.to(device)
    steps_per_epoch = max(1, math.ceil(len(data[1]) / config.batch_size))
    optimizer = make_optimizer(model, config)
    scheduler = None
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs * steps_per_epoch
        )
    step_fn = _Stepper(model, optimizer, scheduler, config)
    gen = torch.Generator().manual_seed(config.seed)
    curve: list[dict] = []
    for epoch in range(1, config.epochs + 1):
        train_loss = step_fn.epoch(epoch, data, gen, device)
        val_loss, val_acc = evaluate_model(model, x_val, y_val)
        entry = {"epoch": epoch, "train_loss": train_loss, "loss": val_loss, "accuracy": val_acc}
        curve.append(entry)
        if on_epoch is not None:
            on_epoch(dict(entry))
    seconds = time.perf_counter() - start
    _, test_acc = evaluate_model(model, splits.x_test.to(device), splits.y_test.to(device))
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return TrainResult(
        accuracy=curve[-1]["accuracy"],
        loss=curve[-1]["loss"],
        test_accuracy=test_acc,
        train_seconds=seconds,
        curve=curve,
        state_dict=state,
    )


class _Stepper:
    """Runs the optimisation steps of one epoch."""

    def __init__(self, model, optimizer, scheduler, config: TrainConfig) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.batch_size = config.batch_size
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def epoch(self, epoch: int, data, gen: torch.Generator, device: torch.device) -> float:
        """Return the mean training loss of one epoch over ``data`` = (x, y)."""
        x, y = data
        n, bs = len(y), self.batch_size
        self.model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        for step in range(max(1, math.ceil(n / bs))):
            idx = order[step * bs : (step + 1) * bs]
            loss = self.criterion(self.model(x[idx]), y[idx])
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrialFailed(f"non-finite training loss at epoch {epoch}, step {step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            total += value * len(idx)
        return total / max(n, 1)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Return the optimizer named by ``config.optimizer`` over the model's parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise EvaluationError("the model has no trainable parameters; nothing to train")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


@torch.no_grad()
def evaluate_model(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH
) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy in [0, 1]) of ``model`` on (x, y), in eval mode."""
    if len(y) == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    try:
        for i in range(0, len(y), batch_size):
            logits = model(x[i : i + batch_size])
            target = y[i : i + batch_size]
            loss_sum += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(dim=1) == target).sum())
    finally:
        model.train(was_training)
    return loss_sum / len(y), correct / len(y)

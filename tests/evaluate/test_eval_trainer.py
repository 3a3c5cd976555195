"""The training loop: learns digits, is deterministic, fails a diverging trial at once."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from nas.errors import EvaluationError
from nas.evaluate import TrainConfig, TrialFailed, train


@pytest.fixture
def fresh(small_cnn):
    """Return a function making the small CNN with seeded initial weights."""

    def make(seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return small_cnn()

    return make


def test_small_cnn_learns_digits_quickly(digits, small_cnn, fresh):
    seen: list[dict] = []
    start = time.perf_counter()
    result = train(fresh(), digits, TrainConfig(epochs=5), on_epoch=seen.append)
    seconds = time.perf_counter() - start
    assert result.accuracy > 0.9, result.curve
    assert result.test_accuracy > 0.85
    assert result.accuracy == result.curve[-1]["accuracy"]  # final epoch, not best
    assert result.loss == result.curve[-1]["loss"]
    assert [e["epoch"] for e in result.curve] == [1, 2, 3, 4, 5]
    assert seen == result.curve
    assert result.curve[-1]["train_loss"] < result.curve[0]["train_loss"]
    assert 0 < result.train_seconds <= seconds
    assert seconds < 30  # a few seconds on one shared core
    fresh = small_cnn()
    fresh.load_state_dict(result.state_dict)
    assert all(t.device.type == "cpu" for t in result.state_dict.values())


def test_same_seed_same_curve_other_seed_other_curve(digits, fresh):
    config = TrainConfig(epochs=2, seed=7)
    a = train(fresh(), digits, config)
    b = train(fresh(), digits, config)
    c = train(fresh(), digits, TrainConfig(epochs=2, seed=8))
    assert a.curve == b.curve
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.curve != c.curve


def test_training_leaves_the_callers_rng_alone(digits):
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 10))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    train(model, digits, TrainConfig(epochs=1))
    assert torch.equal(before, torch.random.get_rng_state())


def test_huge_learning_rate_fails_the_trial(digits, fresh):
    with pytest.raises(TrialFailed, match=r"non-finite training loss at epoch 1, step \d+"):
        train(fresh(), digits, TrainConfig(epochs=3, lr=1e6))


class _NaNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


def test_nan_model_fails_at_the_first_step(digits):
    with pytest.raises(TrialFailed, match="non-finite training loss at epoch 1, step 1$"):
        train(_NaNNet(), digits, TrainConfig(epochs=1))
    assert not issubclass(TrialFailed, EvaluationError)  # a trial's failure, not a user error


@pytest.mark.parametrize(
    "settings",
    [dict(optimizer="adam", lr=1e-3, schedule="constant"),
     dict(optimizer="adamw", lr=1e-3, label_smoothing=0.1)],
)
def test_other_optimizers_and_schedules_train(digits, settings, fresh):
    result = train(fresh(), digits, TrainConfig(epochs=2, **settings))
    assert result.accuracy > 0.5


@pytest.mark.parametrize(
    ("settings", "pattern"),
    [(dict(optimizer="rmsprop"), "optimizer='rmsprop'.*'sgd', 'adam', 'adamw'"),
     (dict(schedule="step"), "schedule='step'"),
     (dict(epochs=0), "epochs=0"),
     (dict(lr=-1.0), "lr=-1.0"),
     (dict(label_smoothing=1.0), "label_smoothing=1.0"),
     (dict(device="tpu"), "device='tpu'")],
)
def test_bad_config_is_a_user_error(settings, pattern):
    with pytest.raises(EvaluationError, match=pattern):
        TrainConfig(**settings)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error message")
def test_cuda_without_gpu_is_a_clear_error(digits, fresh):
    with pytest.raises(EvaluationError, match="no CUDA GPU"):
        train(fresh(), digits, TrainConfig(epochs=1, device="cuda"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda(digits, fresh):
    result = train(fresh(), digits, TrainConfig(epochs=3, device="cuda"))
    assert result.accuracy > 0.85
    assert all(t.device.type == "cpu" for t in result.state_dict.values())

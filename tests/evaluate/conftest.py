"""Shared fixtures of the evaluator tests: one thread, the digits splits, a small CNN."""

from __future__ import annotations

import pytest
from torch import nn

from nas.evaluate import DataSplits, load_dataset


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="session")
def digits() -> DataSplits:
    return load_dataset("digits", seed=0)


def _small_cnn(num_classes: int = 10) -> nn.Module:
    """A hand-written CNN for 1x8x8 digits (reaches > 0.9 validation accuracy in 5 epochs)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, num_classes),
    )


@pytest.fixture(scope="session")
def small_cnn():
    """The factory of a small hand-written CNN for digits (a fixture: conftest is not importable)."""
    return _small_cnn

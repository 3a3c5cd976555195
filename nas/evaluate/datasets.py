"""Data sets for training evaluators: digits, Fashion-MNIST, CIFAR-10, or a user's own loader.

Everything is read from local files; nothing is ever downloaded. Splits are deterministic for
a seed, and the test part never overlaps train/validation (it is for reporting, never for
selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nas.errors import EvaluationError
from nas.evaluate import data_files

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
BUILTIN_DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "cifar10")
VALID_NAMES_HINT = "digits, fashion-mnist, cifar10, or a loader 'path/to/file.py:function'"


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train / validation / test tensors of one data set (x float32 NCHW, y int64)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]

    def sizes(self) -> dict[str, int]:
        """Return the number of examples in each split."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def is_loader_spec(name: str) -> bool:
    """Return whether ``name`` names a user loader (``file.py:function`` or ``module:function``)."""
    return ":" in name and name not in BUILTIN_DATASETS


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    seed: int = 0,
    max_train: int | None = None,
) -> DataSplits:
    """Return the splits of data set ``name`` (see the module docstring for the names)."""
    if max_train is not None and max_train < 1:
        raise EvaluationError(f"max_train={max_train} is invalid: give a positive count or None")
    if name == "digits":
        parts = _digits(seed)
    elif name == "fashion-mnist":
        parts = _fashion_mnist(data_dir, seed)
    elif name == "cifar10":
        parts = _cifar10(data_dir, seed)
    elif is_loader_spec(name):
        parts = _user(name, seed)
    else:
        raise EvaluationError(f"unknown data set {name!r}; valid: {VALID_NAMES_HINT}")
    return _finish(name, parts, seed, max_train)


# --- splitting -------------------------------------------------------------------------------


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (kept, held_out) index arrays, holding out ``fraction`` of every class."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        held.append(idx[: int(round(fraction * len(idx)))])
    out = np.zeros(len(y), dtype=bool)
    if held:
        out[np.concatenate(held)] = True
    return np.flatnonzero(~out), np.flatnonzero(out)


def _subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Return sorted indices of a stratified subsample of size about ``n``."""
    if n >= len(y):
        return np.arange(len(y))
    _, keep = stratified_split(y, n / len(y), seed)
    return keep


# Arrays as read: (x_train, y_train, x_val | None, y_val | None, x_test, y_test, normalise).
_Parts = tuple


def _digits(seed: int) -> _Parts:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    # The test part is the same for every seed, so test figures compare across seeds.
    rest, test = stratified_split(y, 0.2, seed=0)
    return x[rest], y[rest], None, None, x[test], y[test], True


def _fashion_mnist(data_dir: str | None, seed: int) -> _Parts:
    folder = data_dir or FASHION_MNIST_DIR
    arrays = data_files.read_idx_folder(folder)
    x_tr, y_tr, x_te, y_te = arrays
    return x_tr[:, None], y_tr, None, None, x_te[:, None], y_te, True


def _cifar10(data_dir: str | None, seed: int) -> _Parts:
    x_tr, y_tr, x_te, y_te = data_files.read_cifar10_folder(data_dir)
    return x_tr, y_tr, None, None, x_te, y_te, True


def _user(spec: str, seed: int) -> _Parts:
    x_tr, y_tr, x_val, y_val, x_te, y_te = data_files.call_user_loader(spec)
    if x_te is None:
        rest, test = stratified_split(y_tr, 0.2, seed=0)
        x_tr, y_tr, x_te, y_te = x_tr[rest], y_tr[rest], x_tr[test], y_tr[test]
    # A user's data is used as given (no rescaling): they know its units.
    return x_tr, y_tr, x_val, y_val, x_te, y_te, False


def _finish(name: str, parts: _Parts, seed: int, max_train: int | None) -> DataSplits:
    """Split validation off train (where not given), subsample, normalise, make tensors."""
    x_tr, y_tr, x_val, y_val, x_te, y_te, normalise = parts
    if x_val is None:
        # Fashion-MNIST and CIFAR-10 hold out 10% of train; digits and user data 20%.
        frac = 0.1 if name in ("fashion-mnist", "cifar10") else 0.2
        keep, val = stratified_split(y_tr, frac, seed)
        x_tr, y_tr, x_val, y_val = x_tr[keep], y_tr[keep], x_tr[val], y_tr[val]
    num_classes = _check_labels(name, (y_tr, y_val, y_te))  # before a subsample may drop a class
    if max_train is not None:
        keep = _subsample(y_tr, max_train, seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    xs = [np.asarray(a, dtype=np.float32) for a in (x_tr, x_val, x_te)]
    if normalise:
        xs = _normalise(xs)
    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in xs]
    ys = [torch.from_numpy(np.asarray(a, dtype=np.int64)) for a in (y_tr, y_val, y_te)]
    return DataSplits(
        name=name,
        x_train=t[0],
        y_train=ys[0],
        x_val=t[1],
        y_val=ys[1],
        x_test=t[2],
        y_test=ys[2],
        num_classes=num_classes,
        input_shape=tuple(int(s) for s in t[0].shape[1:]),
    )


def _check_labels(name: str, labels: tuple) -> int:
    """Return the number of classes; EvaluationError unless labels are the integers 0..K-1."""
    ys = [np.asarray(a) for a in labels]
    for y, part in zip(ys, ("train", "validation", "test"), strict=True):
        if len(y) and not np.array_equal(y, np.round(y).astype(np.int64)):
            raise EvaluationError(f"data set {name!r}: {part} labels are not integers")
        if len(y) and int(y.min()) < 0:
            raise EvaluationError(f"data set {name!r}: {part} labels hold {int(y.min())}; labels are "
                                  "class numbers 0..K-1")
    num_classes = max(int(y.max()) if len(y) else -1 for y in ys) + 1
    unseen = sorted(set(range(num_classes)) - set(np.unique(ys[0]).astype(int).tolist()))
    if unseen:
        shown = ", ".join(map(str, unseen[:8])) + (" ..." if len(unseen) > 8 else "")
        raise EvaluationError(f"data set {name!r}: labels run to {num_classes - 1} but classes {shown} "
                              "never occur in training; number the classes 0..K-1")
    return num_classes


def _normalise(xs: list[np.ndarray]) -> list[np.ndarray]:
    """Return the arrays standardised per channel with the training split's statistics."""
    train = xs[0]
    axes = (0, 2, 3) if train.ndim == 4 else (0,)
    mean = train.mean(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)
    std = train.std(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)
    std = np.where(std > 1e-8, std, np.float32(1.0))
    for a in xs:  # in place: every array here is already a fresh float32 copy
        a -= mean
        a /= std
    return xs

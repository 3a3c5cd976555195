"""Readers of on-disk data formats: IDX (MNIST family), CIFAR-10 python batches, user loaders."""

from __future__ import annotations

import gzip
import pickle
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nas.errors import EvaluationError
from nas.references import import_reference

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def read_idx_folder(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test) uint8/int64 arrays read from an IDX folder."""
    root = Path(folder)
    missing = [f for f in IDX_FILES if not (root / f).is_file()]
    if missing:
        raise EvaluationError(
            f"Fashion-MNIST not found in {str(root)!r} (missing: {', '.join(missing)}). "
            "Install it with `apt-get install dataset-fashion-mnist` (files land in "
            "/usr/share/datasets/fashion-mnist/) or pass `--data-dir DIR` with a folder holding "
            f"{', '.join(IDX_FILES)}"
        )
    x_tr, y_tr, x_te, y_te = (_read_idx(root / f) for f in IDX_FILES)
    for x, y, what in ((x_tr, y_tr, "train"), (x_te, y_te, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise EvaluationError(
                f"{what} files in {str(root)!r} disagree: images {x.shape}, labels {y.shape}; "
                "expected images (N, H, W) and N labels"
            )
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def _read_idx(path: Path) -> np.ndarray:
    """Return the uint8 array stored in one gzipped IDX file."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # EOFError: a truncated gzip stream
        raise EvaluationError(f"{str(path)!r} is not a readable gzip file ({e}); replace it with a "
                              "complete copy") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise EvaluationError(f"{str(path)!r} is not a gzipped IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim  # 16 bytes for images (3 dims), 8 for labels (1 dim)
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(dims)):
        raise EvaluationError(f"{str(path)!r} is truncated: header says {dims}, has {body.size} B")
    return body.reshape(dims)


def read_cifar10_folder(
    data_dir: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test) from a local ``cifar-10-batches-py`` folder."""
    hint = (
        "pass `--data-dir DIR` naming the `cifar-10-batches-py` folder of the python version of "
        "CIFAR-10 (data_batch_1..5 and test_batch); nas never downloads it"
    )
    if data_dir is None:
        raise EvaluationError(f"cifar10 needs a local copy: {hint}")
    root = Path(data_dir)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    train_files = sorted(root.glob("data_batch_*")) if root.is_dir() else []
    if not train_files or not (root / "test_batch").is_file():
        raise EvaluationError(f"no CIFAR-10 batches found in {str(root)!r}: {hint}")
    parts = [_read_cifar_batch(p) for p in train_files]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_cifar_batch(root / "test_batch")
    return x_tr, y_tr, x_te, y_te


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (uint8 N x 3 x 32 x 32, int64 labels) from one CIFAR python batch."""
    # CIFAR-10 is distributed as pickles; reading the user's own copy is the only way in.
    # (nas never *writes* pickles.)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, EOFError) as e:
        raise EvaluationError(
            f"{str(path)!r} is not a CIFAR-10 python batch (a pickled dict with b'data' "
            f"of N x 3072 bytes and b'labels'): {e!r}"
        ) from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise EvaluationError(
            f"{str(path)!r}: data {data.shape} / labels {labels.shape}; expected N x 3072 and N"
        )
    return data.reshape(-1, 3, 32, 32), labels


# --- user loaders ----------------------------------------------------------------------------

_LOADER_FORMAT = (
    "a loader must return (x, y) arrays/tensors, or a dict with 'train': (x, y) and optionally "
    "'val': (x, y) and 'test': (x, y); x is (N, C, H, W), (N, H, W) or (N, F), y holds N "
    "integer class labels"
)


def call_user_loader(spec: str) -> tuple:
    """Return (x_tr, y_tr, x_val, y_val, x_te, y_te) numpy arrays from ``file.py:function``."""
    fn = _resolve_loader(spec)
    try:
        out = fn()
    except Exception as e:  # the user's code: say whose it was
        raise EvaluationError(f"loader {spec!r} raised {e!r}") from e
    if isinstance(out, Mapping):
        if "train" not in out:
            raise EvaluationError(f"loader {spec!r} returned a dict without 'train': "
                                  f"{_LOADER_FORMAT}")
        unknown = set(out) - {"train", "val", "test"}
        if unknown:
            raise EvaluationError(f"loader {spec!r} returned unknown keys {sorted(unknown)}: "
                                  f"{_LOADER_FORMAT}")
        pairs = [_pair(spec, k, out.get(k)) for k in ("train", "val", "test")]
    else:
        pairs = [_pair(spec, "return value", out), (None, None), (None, None)]
    return tuple(a for p in pairs for a in p)


def _resolve_loader(spec: str):
    """Return the callable named by ``path/to/file.py:function`` or ``package.module:function``."""
    fn = import_reference(spec, "loader", EvaluationError)
    if not callable(fn):
        raise EvaluationError(f"loader {spec!r} is a {type(fn).__name__}, not a function")
    return fn


def _pair(spec: str, where: str, value) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return (x, y) as numpy arrays after checking their shapes."""
    if value is None:
        return None, None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise EvaluationError(f"loader {spec!r}: {where} is {type(value).__name__}, "
                              f"not an (x, y) pair; {_LOADER_FORMAT}")
    x, y = (_to_numpy(v) for v in value)
    if x is None or y is None or y.ndim != 1 or len(x) != len(y) or x.ndim not in (2, 3, 4):
        shapes = [getattr(v, "shape", type(v).__name__) for v in value]
        raise EvaluationError(f"loader {spec!r}: {where} has shapes {shapes}; {_LOADER_FORMAT}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise EvaluationError(f"loader {spec!r}: {where} labels must be integers >= 0, "
                              f"got dtype {y.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    return x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


def _to_numpy(v) -> np.ndarray | None:
    """Return ``v`` as a numpy array, or None when it is not array-like."""
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    try:
        return np.asarray(v)
    except (TypeError, ValueError):
        return None

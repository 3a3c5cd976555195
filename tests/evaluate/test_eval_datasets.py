"""Data sets: digits, Fashion-MNIST (IDX), CIFAR-10 batches, user loaders, and their errors."""

from __future__ import annotations

import gzip
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.errors import EvaluationError
from nas.evaluate import load_dataset
from nas.evaluate.datasets import FASHION_MNIST_DIR, stratified_split

# --- splitting -------------------------------------------------------------------------------


def test_stratified_split_is_disjoint_complete_stratified_and_seeded():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    keep, held = stratified_split(y, 0.2, seed=3)
    assert set(keep).isdisjoint(held)
    assert sorted([*keep, *held]) == list(range(len(y)))
    assert np.bincount(y[held]).tolist() == [10, 6, 4, 2]
    assert np.array_equal(held, stratified_split(y, 0.2, seed=3)[1])
    assert not np.array_equal(held, stratified_split(y, 0.2, seed=4)[1])


def _write_id_loader(tmp_path: Path, n: int = 200) -> str:
    """A user loader whose every image holds its own id, so splits can be traced exactly."""
    path = tmp_path / "ids.py"
    path.write_text(textwrap.dedent(f"""
        import numpy as np
        def load():
            ids = np.arange({n}, dtype=np.float32)
            x = np.broadcast_to(ids[:, None, None, None], ({n}, 1, 2, 2)).copy()
            return x, np.arange({n}) % 4
    """))
    return f"{path}:load"


def _ids(x: torch.Tensor) -> set[int]:
    return set(x[:, 0, 0, 0].long().tolist())


def test_splits_are_disjoint_fixed_test_and_seeded_validation(tmp_path):
    spec = _write_id_loader(tmp_path)
    a, b, a2 = (load_dataset(spec, seed=s) for s in (0, 1, 0))
    for d in (a, b):
        train, val, test = _ids(d.x_train), _ids(d.x_val), _ids(d.x_test)
        assert not (train & val or train & test or val & test)
        assert train | val | test == set(range(200))
        assert (len(test), len(val)) == (40, 32)  # 20% test, then 20% of the rest
    assert _ids(a.x_test) == _ids(b.x_test)  # the test part is the same for every seed
    assert _ids(a.x_val) != _ids(b.x_val)
    assert torch.equal(a.x_val, a2.x_val) and torch.equal(a.y_train, a2.y_train)
    # user data are used as given: not normalised
    assert float(a.x_train.max()) >= 150


# --- digits ----------------------------------------------------------------------------------


def test_digits_shapes_counts_and_normalisation(digits):
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    sizes = digits.sizes()
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=5)
    assert sizes["val"] == pytest.approx(0.2 * (1797 - sizes["test"]), abs=5)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.x_train.shape[1:] == (1, 8, 8)
    assert abs(float(digits.x_train.mean())) < 1e-4
    assert float(digits.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    assert torch.bincount(digits.y_test).min() >= 30  # stratified: every class is there


def test_digits_test_labels_fixed_across_seeds(digits):
    other = load_dataset("digits", seed=5)
    assert torch.equal(digits.y_test, other.y_test)
    assert not torch.equal(digits.y_val, other.y_val)


def test_max_train_subsamples_stratified(digits):
    small = load_dataset("digits", seed=0, max_train=300)
    assert len(small.y_train) == pytest.approx(300, abs=5)
    assert torch.bincount(small.y_train).min() >= 25
    assert torch.equal(small.y_val, digits.y_val)
    with pytest.raises(EvaluationError, match="max_train=0"):
        load_dataset("digits", max_train=0)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(EvaluationError, match="'mnist'.*digits, fashion-mnist, cifar10"):
        load_dataset("mnist")


# --- Fashion-MNIST / IDX -----------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_reads_as_fashion_mnist(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 100), ("t10k", 30)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 5, 6)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    d = load_dataset("fashion-mnist", data_dir=str(tmp_path))
    assert d.input_shape == (1, 5, 6) and d.num_classes == 10
    assert d.sizes() == {"train": 90, "val": 10, "test": 30}
    assert d.y_test.tolist() == (np.arange(30) % 10).tolist()


def test_truncated_idx_file_is_an_error(tmp_path):
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.zeros((4, 3, 3)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(4))
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00")
    with pytest.raises(EvaluationError, match="truncated"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path))


def test_missing_fashion_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(EvaluationError) as info:
        load_dataset("fashion-mnist", data_dir=str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir DIR" in message
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in message


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(),
                    reason="dataset-fashion-mnist not installed (apt-get install it; CI does)")
def test_real_fashion_mnist_loads():
    d = load_dataset("fashion-mnist", max_train=2000, seed=1)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert d.sizes() == {"train": 2000, "val": 6000, "test": 10000}
    assert torch.bincount(d.y_train).tolist() == [200] * 10
    assert torch.bincount(d.y_test).tolist() == [1000] * 10
    assert torch.isfinite(d.x_test).all()


# --- CIFAR-10 ----------------------------------------------------------------------------------


def _write_cifar(folder: Path, n: int = 50) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(i % 10) for i in range(n)],
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)  # the format CIFAR-10 ships in (a test fixture, not storage)


def test_cifar10_fake_folder(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    for data_dir in (tmp_path, tmp_path / "cifar-10-batches-py"):
        d = load_dataset("cifar10", data_dir=str(data_dir))
        assert d.input_shape == (3, 32, 32) and d.num_classes == 10
        assert d.sizes() == {"train": 90, "val": 10, "test": 50}
        per_channel = d.x_train.mean(dim=(0, 2, 3))
        assert per_channel.abs().max() < 1e-4


def test_cifar10_missing_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    with pytest.raises(EvaluationError, match="--data-dir"):
        load_dataset("cifar10")
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(EvaluationError, match="data_batch_1.*not a CIFAR-10 python batch"):
        load_dataset("cifar10", data_dir=str(tmp_path))


# --- user loaders ------------------------------------------------------------------------------


def _loader_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "my_data.py"
    path.write_text("import numpy as np\nimport torch\n" + textwrap.dedent(body))
    return path


def test_user_loader_dict_with_parts_and_tensors(tmp_path):
    path = _loader_file(tmp_path, """
        def parts():
            g = torch.Generator().manual_seed(0)
            def part(n):
                return torch.rand(n, 12, 12, generator=g), torch.arange(n) % 3
            return {"train": part(60), "val": part(15), "test": part(9)}
    """)
    d = load_dataset(f"{path}:parts")
    assert d.sizes() == {"train": 60, "val": 15, "test": 9}
    assert d.input_shape == (1, 12, 12) and d.num_classes == 3


def test_user_loader_flat_features(tmp_path):
    path = _loader_file(tmp_path, """
        def flat():
            return np.random.default_rng(0).normal(size=(100, 7)), np.arange(100) % 2
    """)
    d = load_dataset(f"{path}:flat")
    assert d.input_shape == (7,) and d.num_classes == 2 and sum(d.sizes().values()) == 100


def test_user_loader_from_an_importable_module(tmp_path, monkeypatch):
    _loader_file(tmp_path, "def f():\n    return np.zeros((20, 1, 4, 4)), np.arange(20) % 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_dataset("my_data:f").input_shape == (1, 4, 4)


@pytest.mark.parametrize(
    ("body", "func", "pattern"),
    [
        ("def f():\n    return 42\n", "f", "return value is int, not an .x, y. pair"),
        ("def f():\n    return np.zeros((5, 2)), np.zeros(4, dtype=int)\n", "f", "shapes"),
        ("def f():\n    return np.zeros((4, 2)), np.array([0.5, 1, 2, 3])\n", "f", "integers"),
        ("def f():\n    return {'x': 1}\n", "f", "without 'train'"),
        ("def f():\n    raise ValueError('boom')\n", "f", "raised ValueError..boom"),
        ("def f():\n    return 1\n", "g", "has no function 'g'.*'f'"),
        ("this is not python\n", "f", "importing .* raised"),
    ],
)
def test_user_loader_errors_name_the_loader(tmp_path, body, func, pattern):
    path = _loader_file(tmp_path, body)
    with pytest.raises(EvaluationError, match=pattern) as info:
        load_dataset(f"{path}:{func}")
    assert "my_data" in str(info.value)


def test_user_loader_missing_file(tmp_path):
    with pytest.raises(EvaluationError, match="nope.py.*does not exist"):
        load_dataset(f"{tmp_path}/nope.py:load")
    with pytest.raises(EvaluationError, match="cannot import module"):
        load_dataset("no_such_module_xyz:load")

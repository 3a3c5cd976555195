"""Bad data is found when it is loaded, before any training: broken files, labels out of range."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nas.errors import EvaluationError
from nas.evaluate import load_dataset
from nas.evaluate.data_files import IDX_FILES

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _copy_fashion(tmp_path: Path) -> Path:
    if not all((FASHION / f).is_file() for f in IDX_FILES):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    for f in IDX_FILES:
        shutil.copy(FASHION / f, tmp_path / f)
    return tmp_path


def test_a_truncated_gzip_file_is_a_clear_error(tmp_path):
    folder = _copy_fashion(tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:200])
    with pytest.raises(EvaluationError, match="t10k-labels.*not a readable gzip file"):
        load_dataset("fashion-mnist", data_dir=str(folder))


def test_a_file_that_is_not_gzip_is_a_clear_error(tmp_path):
    folder = _copy_fashion(tmp_path)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"plain text, not gzip\n" * 10)
    with pytest.raises(EvaluationError, match="train-labels.*not a readable gzip file"):
        load_dataset("fashion-mnist", data_dir=str(folder))


LOADER = '''
import numpy as np

def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1, 4, 4)).astype("float32")
    y = np.arange(200) % 3
    y[5] = {bad}
    return x, y
'''


@pytest.mark.parametrize("bad, message", [("-1", "labels"), ("255", "never occur in training")])
def test_labels_must_number_the_classes(tmp_path, bad, message):
    (tmp_path / "loader.py").write_text(LOADER.format(bad=bad))
    with pytest.raises(EvaluationError, match=message):
        load_dataset(f"{tmp_path / 'loader.py'}:data")


def test_well_numbered_labels_load(tmp_path):
    (tmp_path / "loader.py").write_text(LOADER.format(bad="2"))
    assert load_dataset(f"{tmp_path / 'loader.py'}:data").num_classes == 3

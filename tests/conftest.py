"""Fixtures shared by every test directory: the PostgreSQL server (tests/pg.py) and one CPU thread."""

import pytest
import torch

try:  # the repo root on sys.path (python -m pytest, PYTHONPATH=.)
    from tests.pg import postgres_url, store_url  # noqa: F401
except ModuleNotFoundError:  # a bare `pytest`: only tests/ itself is on sys.path
    from pg import postgres_url, store_url  # noqa: F401


@pytest.fixture
def one_thread():
    """Run the test on one intra-op thread, restored after."""
    # Two cores shared by several jobs: one thread keeps timings sane and results exact.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Timers: sane numbers, thread settings restored, interleaved ranking, CUDA where present."""

import pytest
import torch
from torch import nn

from nas.errors import HardwareError
from nas.hardware import DEFAULT_THREADS, compare_interleaved, measure, measure_latency, profile_path


class _ThreadProbe(nn.Module):
    """Records the intra-op thread count in force while it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.add(torch.get_num_threads())
        return x * 2


def test_measure_returns_sane_timing_and_restores_threads():
    before = torch.get_num_threads()
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    t = measure(model, (3, 16, 16), threads=1, warmup=2, repeats=12)
    assert t.n == 12 and len(t.samples_ms) == 12
    assert 0.0 < t.median_ms < 1000.0
    assert t.iqr_ms >= 0.0
    assert min(t.samples_ms) <= t.median_ms <= max(t.samples_ms)
    assert t.clock == "thread"  # one thread: this thread's CPU time is the robust clock
    assert torch.get_num_threads() == before
    assert not model.training


def test_threads_are_fixed_during_measurement_and_restored():
    before = torch.get_num_threads()
    probe = _ThreadProbe()
    measure(probe, (4,), threads=1, warmup=1, repeats=3)
    assert probe.seen == {1}
    assert torch.get_num_threads() == before


def test_measure_latency_is_the_median_and_batch_grows_it():
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3))
    small = measure_latency(model, (3, 32, 32), batch_size=1, threads=1, repeats=7)
    big = measure_latency(model, (3, 32, 32), batch_size=16, threads=1, repeats=7)
    assert isinstance(small, float) and small > 0
    assert big > 3 * small


def test_interleaved_comparison_ranks_bigger_conv_slower():
    models = {"small": nn.Conv2d(16, 16, 3, padding=1), "big": nn.Conv2d(16, 64, 3, padding=1)}
    # 4x the output channels: 4x the work
    res = compare_interleaved(models, (16, 32, 32), batch_size=2, threads=1, repeats=9)
    assert set(res) == {"small", "big"}
    assert res["big"].median_ms > 1.5 * res["small"].median_ms
    assert all(r.n == 9 for r in res.values())


def test_bad_requests_raise_hardware_error():
    model = nn.Linear(4, 4)
    with pytest.raises(HardwareError, match="batch_size"):
        measure(model, (4,), batch_size=0)
    with pytest.raises(HardwareError, match="tpu"):
        measure(model, (4,), device="tpu")
    with pytest.raises(HardwareError, match="clock"):
        measure(model, (4,), clock="sundial")
    with pytest.raises(HardwareError, match="empty"):
        compare_interleaved({}, (4,))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_timing_with_events():
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3))
    t = measure(model, (3, 64, 64), batch_size=8, device="cuda", repeats=10)
    assert t.clock == "wall" and 0 < t.median_ms < 1000
    res = compare_interleaved({"a": nn.Conv2d(64, 64, 3), "b": nn.Conv2d(64, 256, 3)},
                              (64, 64, 64), batch_size=32, device="cuda", repeats=10)
    assert res["b"].median_ms > res["a"].median_ms


def test_measurements_default_to_the_thread_count_of_profiles_and_predictions():
    spy, before = _ThreadProbe(), torch.get_num_threads()
    torch.set_num_threads(2)  # a caller's own setting must not leak into a default measurement
    try:
        measure_latency(spy, (4,), warmup=1, repeats=3)
        compare_interleaved({"spy": spy}, (4,), warmup=1, repeats=2)
        assert spy.seen == {DEFAULT_THREADS} == {1}
        # the profile a default prediction loads was made at that thread count
        assert f"-{DEFAULT_THREADS}t-" in profile_path("cpu").name
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

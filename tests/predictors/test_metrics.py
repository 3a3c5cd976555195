"""Predictor metrics against hand-computed values."""

import math

import numpy as np
import pytest

from nas.errors import HardwareError
from nas.predictors import flops_baseline, latency_report, noise_ceiling


def test_latency_report_hand_computed():
    true = [1.0, 2.0, 4.0, 8.0]
    pred = [1.04, 2.2, 3.4, 8.0]  # rel. errors +4%, +10%, -15%, 0%
    r = latency_report(pred, true)
    assert r["within_5"] == pytest.approx(0.5)
    assert r["within_10"] == pytest.approx(0.75)
    assert r["within_15"] == pytest.approx(1.0)
    assert r["mape"] == pytest.approx((0.04 + 0.10 + 0.15 + 0.0) / 4)
    assert r["bias"] == pytest.approx((0.04 + 0.10 - 0.15 + 0.0) / 4)
    assert r["rmse"] == pytest.approx(math.sqrt((0.04**2 + 0.2**2 + 0.6**2) / 4))
    assert r["spearman"] == pytest.approx(1.0) and r["kendall"] == pytest.approx(1.0)
    swapped = latency_report([2.0, 1.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert swapped["spearman"] == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert swapped["kendall"] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant


def test_noise_ceiling_and_errors():
    assert noise_ceiling([1.0, 1.05, 2.0, 5.0], [1.0, 1.0, 1.0, 4.0]) == pytest.approx(0.5)
    assert noise_ceiling([1.2], [1.0], tol=0.25) == 1.0
    with pytest.raises(HardwareError):
        latency_report([1.0], [1.0, 2.0])
    with pytest.raises(HardwareError, match="positive"):
        latency_report([1.0], [0.0])


def test_flops_baseline_fits_a_line():
    f = np.array([1e6, 2e6, 4e6])
    lat = 0.5 + 2e-6 * f
    pred = flops_baseline(f, lat, [3e6, 1e7])
    assert pred == pytest.approx([6.5, 20.5])
    with pytest.raises(HardwareError):
        flops_baseline([1.0], [1.0], [2.0])

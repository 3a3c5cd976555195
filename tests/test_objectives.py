"""Objectives, constraints and the one Pareto-front implementation every part uses."""

from __future__ import annotations

import numpy as np
import pytest

from nas.errors import SearchError
from nas.objectives import Constraint, Objective, dominates, pareto_mask


@pytest.mark.parametrize("dims, seed", [(2, 0), (2, 1), (3, 2), (4, 3)])
def test_pareto_mask_equals_brute_force_dominance(dims, seed):
    pts = np.random.default_rng(seed).integers(0, 6, size=(150, dims)).astype(float)  # many ties
    brute = [not any(dominates(q, p) for q in pts) for p in pts]
    assert pareto_mask(pts).tolist() == brute


def test_parsing_and_errors():
    assert str(Objective.parse("latency_ms")) == "latency_ms:min"
    assert Constraint.parse("params<=1e6").satisfied({"params": 5e5}) is True
    with pytest.raises(SearchError, match="leaks the test set"):
        Objective.parse("test_accuracy:max")

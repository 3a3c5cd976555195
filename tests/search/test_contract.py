"""The contract every registered searcher keeps (as Optuna tests every sampler with one suite)."""

from __future__ import annotations

import pytest
import torch

from nas.errors import SearchError
from nas.objectives import dominates
from nas.search import SEARCHERS, Observation, make_searcher
from tests.search.toy import OPTIMUM, metrics, toy_space

torch.set_num_threads(1)

# every registered searcher, Optuna through two samplers, MCTS also binarised; fast settings
CASES = {
    **{name: {} for name in SEARCHERS if name != "optuna"},
    "optuna:tpe": {},
    "optuna:random": {},
    "mcts-bi": {"binarize": True},
    "smbo-rf": {"surrogate": "predictor:rf", "n_init": 5},  # predictors.accuracy as the surrogate
}
FAST = {"linas": {"pop_size": 16, "generations": 4}, "nsga2": {"pop_size": 8}}
# budget within which each searcher must find the optimum of the 192-architecture toy space
# (random ones get all of it: without repeats they must have met it by then)
BUDGET = {"random": 192, "optuna:random": 192, "smbo": 40, "smbo-rf": 60, "linas": 60}
SPACE = toy_space()


def make(case: str, objectives=("accuracy:max",), seed: int = 0, **kw):
    name = case.split("-")[0]
    settings = {**FAST.get(name, {}), **CASES[case], **kw}
    return make_searcher(name, SPACE, list(objectives), seed=seed, **settings)


def drive(searcher, n: int) -> list:
    """Ask and tell n times; return the architectures asked."""
    asked = []
    for _ in range(n):
        arch = searcher.ask()
        asked.append(arch)
        searcher.tell(arch, metrics(arch))
    return asked


# the two slowest searches (10-16 s each on 2 busy cores) run with -m slow; the rest always
SLOW = {"linas", "smbo-rf"}
OPTIMUM_CASES = [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES]


@pytest.mark.parametrize("case", OPTIMUM_CASES)
def test_finds_known_optimum(case):
    s = make(case)
    asked = drive(s, BUDGET.get(case, 80))
    assert max(metrics(a)["accuracy"] for a in asked) == OPTIMUM
    assert all(SPACE.validate(a) == a for a in asked)


@pytest.mark.parametrize("case", CASES)
def test_same_seed_same_sequence(case):
    a, b = drive(make(case, seed=3), 15), drive(make(case, seed=3), 15)
    assert [x.id for x in a] == [x.id for x in b]
    assert [x.id for x in drive(make(case, seed=4), 15)] != [x.id for x in a]


@pytest.mark.parametrize("case", CASES)
def test_restore(case):
    full = make(case)
    drive(full, 14)
    resumed = make(case)
    resumed.restore(list(full.history))
    assert len(resumed.history) == 14
    nxt_full, nxt_resumed = drive(full, 3), drive(resumed, 3)
    if type(full).resumable:  # deterministic: exactly the asks of the uninterrupted run
        assert [a.id for a in nxt_resumed] == [a.id for a in nxt_full]
    told = {o.arch.id for o in full.history[:14]}
    assert not told & {a.id for a in nxt_resumed}


@pytest.mark.parametrize("case", CASES)
def test_constraints_via_estimate(case):
    s = make(case, constraints=["params<=400"], estimate=metrics)
    asked = drive(s, 25)
    assert all(metrics(a)["params"] <= 400 for a in asked)
    assert s.n_skipped > 0  # 6 of the 16 (a, b) pairs are infeasible: some must have been drawn


@pytest.mark.parametrize("case", CASES)
def test_multi_objective_front(case):
    s = make(case, objectives=("accuracy:max", "latency_ms:min"))
    drive(s, 20)
    front = s.front()
    assert front
    points = [s.values(o.metrics) for o in s.completed()]
    for o in front:
        assert not any(dominates(p, s.values(o.metrics)) for p in points)
    assert {o.arch.id for o in front} <= {o.arch.id for o in s.history}


@pytest.mark.parametrize("case", CASES)
def test_ask_batch_distinct_pending(case):
    s = make(case)
    drive(s, 12)
    batch = s.ask_batch(4)
    ids = [a.id for a in batch]
    assert len(set(ids)) == 4
    assert not set(ids) & {o.arch.id for o in s.history}
    assert set(ids) == set(s.pending)
    for a in batch:
        s.tell(a, metrics(a))
    assert not s.pending


@pytest.mark.parametrize("case", CASES)
def test_failed_trials_and_test_metrics_hidden(case):
    s = make(case)
    a = s.ask()
    s.tell(a, None, state="FAILED")
    b = s.ask()
    s.tell(b, metrics(b))
    assert [o.state for o in s.history] == ["FAILED", "COMPLETE"]
    assert "test_accuracy" not in s.history[1].metrics  # searchers never see test metrics
    drive(s, 3)


@pytest.mark.parametrize("case", CASES)
def test_settings_round_trip_and_unknown_setting(case):
    s = make(case)
    again = make_searcher(case.split("-")[0], SPACE, ["accuracy:max"], seed=0,
                          **s.settings())
    assert again.settings() == s.settings()
    with pytest.raises(SearchError):
        make(case, no_such_setting=1)


def test_observation_of_restore_keeps_order():
    s = make("evolution")
    arch = SPACE.sample(1)
    s.restore([Observation(arch, metrics(arch))])
    assert s.history[0].arch == arch

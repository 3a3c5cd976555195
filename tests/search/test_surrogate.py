"""The shared surrogates: the GP surrogate's encoding, schedule, subsets and kriging believer, MCTS's
ridge surrogate, and the searchers that use them through their public methods."""

from __future__ import annotations

import numpy as np

from nas.search import make_searcher
from nas.search.surrogate import GPSurrogate, RidgeSurrogate, refit_point, training_set
from nas.space import Architecture
from tests.search.test_contract import drive
from tests.search.toy import metrics, toy_space

MO = ["accuracy:max", "latency_ms:min"]


def trials(n: int, seed: int = 0) -> tuple[list[Architecture], np.ndarray]:
    sp = toy_space()
    seen: dict[str, Architecture] = {}
    k = 0
    while len(seen) < n:
        a = sp.sample(seed * 1000 + k)
        seen.setdefault(a.id, a)
        k += 1
    archs = list(seen.values())
    return archs, np.array([[metrics(a)["accuracy"], -metrics(a)["latency_ms"]] for a in archs])


def test_refit_schedule_is_every_trial_then_every_tenth():
    assert [refit_point(n) for n in (1, 30, 31, 38, 45, 99, 109, 110)] == [1, 30, 30, 36, 44, 99,
                                                                          100, 110]


def test_encode_caches_rows_and_groups_split_one_hot_from_paths():
    s = GPSurrogate(toy_space(), seed=0)
    archs, _ = trials(5)
    X = s.encode(archs)
    assert X.shape == (5, s.encoder().dim) and X.dtype == np.float32
    assert np.array_equal(s.encode(archs[::-1]), X[::-1])
    assert s.encode([]).shape == (0, 0)
    cols = np.concatenate(s.groups())
    assert sorted(cols.tolist()) == list(range(s.encoder().dim))  # every column in one group


def test_subset_keeps_the_best_and_the_latest():
    s = GPSurrogate(toy_space(), seed=0, max_train=20)
    y = np.arange(30.0)[:, None] * np.array([[1.0, 0.0]]) + np.array([[0.0, 1.0]])
    assert np.array_equal(s.subset(y[:20]), np.arange(20))
    rows = s.subset(y[::-1])  # best first: the 10 best are the first 10, the 10 latest the last
    assert rows.tolist() == [*range(10), *range(20, 30)]


def test_model_hyperparameters_follow_the_schedule_and_repeat_exactly():
    archs, y = trials(40)
    z = y[:, 0] - y[:, 0].mean()
    a, b = GPSurrogate(toy_space(), seed=1), GPSurrogate(toy_space(), seed=1)
    X = a.encode(archs)
    first = a.model(0, X, z)
    # 40 trials: the hyperparameters of the first 40; 38 trials: those of the first 36
    assert np.array_equal(b.model(0, X, z).log_params, first.log_params)
    later = a.model(0, X[:38], z[:38])
    assert np.array_equal(later.log_params, b.model(0, X[:36], z[:36]).log_params)
    sub = a.model(0, X, z, rows=np.arange(10))
    assert np.array_equal(sub.log_params, first.log_params) and len(sub.X_) == 10


def test_believer_adds_pending_at_their_predicted_means():
    archs, y = trials(30)
    s = GPSurrogate(toy_space(), seed=0)
    X, z = s.encode(archs[:25]), y[:25, 0] - y[:25, 0].mean()
    rows = np.arange(25)
    plain, none = s.believer(0, X, z, rows, [])
    assert len(none) == 0 and len(plain.X_) == 25
    pending = archs[25:]
    gp, believed = s.believer(0, X, z, rows, pending)
    assert len(gp.X_) == 30
    mean, sd = gp.predict(s.encode(pending))
    assert np.allclose(mean, believed, atol=0.05)  # the believed values stay the prediction
    assert np.all(sd < plain.predict(s.encode(pending))[1])  # and are no longer in doubt


def test_training_set_counts_a_failure_as_the_worst_value():
    s = make_searcher("smbo", toy_space(), MO, seed=0)
    drive(s, 4)
    failed = next(a for a in (toy_space().sample(k) for k in range(100)) if a.id not in s.seen())
    s.tell(failed, None)
    archs, y = training_set(s)
    assert archs[-1].id == failed.id and y.shape == (5, 2)
    assert np.array_equal(y[-1], y[:4].min(0))


def test_ridge_surrogate_ranks_by_the_rewards_seen():
    r = RidgeSurrogate(toy_space(), alpha=0.1)
    archs, y = trials(60)
    for a, v in zip(archs[:50], y[:50, 0], strict=True):
        r.add(a, float(v))
    pred = r.predict(archs[50:])
    assert pred.shape == (10,)
    assert np.corrcoef(pred, y[50:, 0])[0, 1] > 0.5


def test_smbo_and_linas_rebuild_their_surrogate_from_the_history():
    # the surrogate holds only what derives from the trials: a restore asks the same
    for name, settings in (("smbo", {"n_init": 5}), ("linas", {"n_init": 5, "pop_size": 8,
                                                                "generations": 2, "batch": 2})):
        s = make_searcher(name, toy_space(), MO, seed=4, **settings)
        drive(s, 9)
        again = make_searcher(name, toy_space(), MO, seed=4, **settings)
        again.restore(list(s.history))
        assert [a.id for a in drive(again, 3)] == [a.id for a in drive(s, 3)]

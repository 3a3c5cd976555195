"""The two-objective acquisition: exact EHVI against brute force, and SMBO's fronts with it."""

from __future__ import annotations

import numpy as np
import pytest

from nas.search.gp import hypervolume_improvement_2d, normal_scores, to_values
from nas.search.mo import ehvi, ehvi_2d, normal_strata, positive_part, strips, targets

FRONT = np.array([[0.1, 0.9], [0.4, 0.6], [0.7, 0.35], [0.3, 0.2]])  # the last is dominated
# (hypervolume_improvement_2d, the brute-force check, wants the non-dominated FRONT[:3])
REF = np.array([-0.1, -0.1])
MEAN = np.array([[0.5, 0.5], [0.2, 0.95], [0.9, 0.1], [0.0, 0.0], [0.3, 0.3]])
STD = np.array([[0.1, 0.2], [0.05, 0.05], [0.3, 0.1], [0.01, 0.01], [0.5, 0.02]])


def test_strips_are_the_staircase_of_the_front():
    lo, hi, height = strips(FRONT, REF)
    assert np.allclose(lo, [-0.1, 0.1, 0.4, 0.7])
    assert np.allclose(hi[:-1], [0.1, 0.4, 0.7]) and np.isinf(hi[-1])
    assert np.allclose(height, [0.9, 0.6, 0.35, -0.1])


def identity(t: np.ndarray) -> np.ndarray:
    return t


def ehvi_of(kinds, mean, std):
    """Return the EHVI that SMBO's acquisition computes for these marginals (on the front's scale:
    targets that are the values, no normalisation): Gaussian for "value", quadrature otherwise."""
    parts = [positive_part(k, identity, mean[:, j], std[:, j], 0.0, 1.0) for j, k in enumerate(kinds)]
    return ehvi_2d(FRONT, REF, *parts)


def test_ehvi_gaussian_matches_monte_carlo():
    rng = np.random.default_rng(0)
    draws = MEAN[None] + STD[None] * rng.standard_normal((100_000, *MEAN.shape))
    mc = np.mean([hypervolume_improvement_2d(d, FRONT[:3], REF) for d in draws[:20_000]], axis=0)
    exact = ehvi_of(["value", "value"], MEAN, STD)
    # 20,000 draws: the Monte Carlo error is well under 2 % of the largest value
    assert np.allclose(exact, mc, atol=0.02 * mc.max())
    assert exact[3] < 1e-6 < exact[0]  # a sure point inside the dominated region adds nothing


def test_ehvi_quadrature_matches_the_closed_form():
    # ranks and logs go through quadrature nodes (`normal_strata`); values through the closed form
    exact = ehvi_of(["value", "value"], MEAN, STD)
    for kinds in (["rank", "rank"], ["rank", "value"], ["value", "log"]):
        assert np.allclose(ehvi_of(kinds, MEAN, STD), exact, atol=0.01 * exact.max())
    t, w = normal_strata(32)
    assert abs(t @ w) < 1e-12 and abs(w.sum() - 1.0) < 1e-12


def test_ehvi_without_doubt_is_the_hypervolume_improvement():
    std = np.full_like(MEAN, 1e-9)
    assert np.allclose(ehvi_of(["value", "value"], MEAN, std),
                       hypervolume_improvement_2d(MEAN, FRONT[:3], REF), atol=1e-9)


def test_ehvi_normalises_by_the_front_and_maps_targets_back():
    # targets that are the values scaled by 2 (what `targets` would hand back): the same EHVI as
    # on the values themselves, since both are normalised by the same front of values
    y = np.vstack([FRONT, [[0.0, 0.0]]])
    half = [(lambda t: t / 2.0, 2.0 * MEAN[:, j], 2.0 * STD[:, j]) for j in range(2)]
    plain = [(identity, MEAN[:, j], STD[:, j]) for j in range(2)]
    for ref in ("observed", "predicted"):
        scaled = ehvi(half, ["value", "value"], y, FRONT, ref)
        assert np.allclose(scaled, ehvi(plain, ["value", "value"], y, FRONT, ref))
        assert scaled[3] < 1e-6 < scaled[0]


@pytest.mark.parametrize("kind", ["rank", "value", "log"])
def test_targets_map_back_to_the_values(kind):
    y = -np.array([3.0, 0.5, 12.0, 7.0, 7.0, 1.0])  # a latency, minimised: values are negated
    t, back = targets(kind, y, -1.0)
    assert np.allclose(back(t), y)
    assert np.all(np.diff(back(np.linspace(-3, 3, 13))) > 0)  # monotone beyond the data too


def test_to_values_tail_extrapolates_by_the_tail_slope():
    y = np.concatenate([np.full(5, 10.0), np.linspace(80.0, 90.0, 25)])
    z = normal_scores(y)
    beyond = to_values(np.array([z.max() + 1.0]), z, y, tail=True)[0]
    assert 90.0 < beyond < 95.0
    assert to_values(np.array([z.max() + 1.0]), z, y)[0] > 100.0  # the overall slope adds tens


# -- SMBO with two objectives (the contract suite covers the default; these the variants) ---------
MO = ("accuracy:max", "latency_ms:min")


def _true_front_ids() -> set[str]:
    from nas.objectives import pareto_front
    from nas.search.mutation import listed
    from nas.space import Architecture
    from tests.search.toy import metrics, toy_space

    archs = [Architecture(a) for a in listed(toy_space(), plain=True)]
    pts = [[metrics(a)["accuracy"], -metrics(a)["latency_ms"]] for a in archs]
    return {archs[i].id for i in pareto_front(pts)}


@pytest.mark.parametrize("settings", [
    {}, *(pytest.param(s, marks=pytest.mark.slow)  # 3-10 s each on 2 busy cores
          for s in ({"targets": "rank"}, {"targets": "rank,log"}, {"mo": "hvi"}, {"top_every": 0},
                    {"ref": "observed"}, {"linear": "none"}))])
def test_smbo_two_objectives_finds_most_of_the_true_front(settings):
    from nas.search import make_searcher
    from tests.search.test_contract import drive
    from tests.search.toy import toy_space

    s = make_searcher("smbo", toy_space(), list(MO), seed=0, n_init=6, **settings)
    drive(s, 20)  # of 192
    found = {o.arch.id for o in s.front()}
    true = _true_front_ids()
    # 9 architectures: random 20 of 192 hold 1-3 of them; smbo (seed 0) 6-8
    assert len(found & true) >= 0.6 * len(true)


def test_smbo_ehvi_batch_is_distinct_and_resumes():
    from nas.search import make_searcher
    from tests.search.test_contract import drive
    from tests.search.toy import toy_space

    s = make_searcher("smbo", toy_space(), list(MO), seed=2, n_init=5)
    drive(s, 10)
    batch = s.ask_batch(3)  # kriging believer: pending ones join the fit and the front
    assert len({a.id for a in batch}) == 3
    for a in batch:
        s.tell(a, __import__("tests.search.toy", fromlist=["metrics"]).metrics(a))
    again = make_searcher("smbo", toy_space(), list(MO), seed=2, n_init=5)
    again.restore(list(s.history))
    assert [a.id for a in drive(again, 3)] == [a.id for a in drive(s, 3)]


def test_linas_decodes_genes_like_a_walk():
    from torch import nn

    from nas import space as S
    from nas.search import make_searcher
    from nas.search.mutation import genes_to_arch
    from tests.search.toy import toy_space

    flat = S.Space(S.op(nn.Identity, a=S.choice("a", [0, 1, 2, 3]), b=S.choice("b", [0, 1, 2]),
                        c=S.choice("c", ["x", "y"])), input_shape=(4,), name="flat")
    for space, is_flat in ((toy_space(), False), (flat, True)):  # the toy space is conditional
        s = make_searcher("linas", space, list(MO), seed=0, n_init=5, pop_size=8, generations=2,
                          **({"batch": 2} if is_flat else {}))
        metrics = __import__("tests.search.toy", fromlist=["metrics"]).metrics
        for _ in range(8):
            a = s.ask()
            s.tell(a, {"accuracy": float(metrics({**a, "extra": False, "d": 0})["accuracy"]),
                       "latency_ms": float(len(str(a)))} if is_flat else metrics(a))
        assert s._flat is is_flat and s._decoded
        labels = list(s.decisions())
        for key, arch in s._decoded.items():
            assert genes_to_arch(space, np.frombuffer(key, dtype=np.int64), labels) == arch


def test_smbo_linear_term_goes_to_objectives_modelled_on_values():
    from nas.errors import SearchError
    from nas.search import make_searcher
    from tests.search.toy import toy_space

    s = make_searcher("smbo", toy_space(), list(MO), seed=0)  # linear=auto, targets=rank,value
    onehot = s.model.groups()[0]
    assert s.model.linear_groups(0, "rank") == []
    assert np.array_equal(s.model.linear_groups(1, "value")[0], onehot)
    forced = make_searcher("smbo", toy_space(), list(MO), seed=0, linear="onehot,none")
    assert len(forced.model.linear_groups(0, "rank")) == 1
    assert forced.model.linear_groups(1, "value") == []
    with pytest.raises(SearchError, match="linear="):
        make_searcher("smbo", toy_space(), list(MO), seed=0, linear="paths")


def test_smbo_starts_with_fewer_random_trials_for_two_objectives():
    from nas.search import make_searcher
    from tests.search.toy import toy_space

    assert make_searcher("smbo", toy_space(), list(MO), seed=0).n_init == 6
    assert make_searcher("smbo", toy_space(), list(MO[:1]), seed=0).n_init == 10
    assert make_searcher("smbo", toy_space(), list(MO), seed=0, mo="hvi").n_init == 10
    assert make_searcher("smbo", toy_space(), list(MO), seed=0, n_init=8).settings()["n_init"] == 8

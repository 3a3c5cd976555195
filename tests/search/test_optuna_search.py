"""Optuna behind the contract: what happens when its sampler proposes a finished architecture."""

from __future__ import annotations

from nas.search import make_searcher
from tests.search.toy import metrics, toy_space

SPACE = toy_space()


def test_a_repeat_falls_back_to_an_unseen_neighbour_of_it():
    s = make_searcher("optuna:tpe", SPACE, ["accuracy:max"], seed=0, max_repeats=1)
    arch = SPACE.sample(0)
    near = s._unseen_near(arch, {arch.id})
    assert near.id != arch.id
    # one decision changed (two if every one-step neighbour were seen); a decision nested in a
    # switched-off block may appear or vanish with its parent
    changed = {k for k in set(arch) | set(near) if arch.get(k) != near.get(k)}
    assert 1 <= len(changed) <= 2
    assert s._unseen_near(None, {arch.id}).id != arch.id  # no repeat seen: a random unseen one


def test_with_one_sampler_call_per_ask_no_finished_architecture_is_asked_again():
    s = make_searcher("optuna:tpe", SPACE, ["accuracy:max"], seed=1, max_repeats=1,
                      n_startup_trials=5)
    asked = []
    for _ in range(120):  # TPE concentrates on the optimum's region and re-proposes it
        a = s.ask()
        asked.append(a.id)
        s.tell(a, metrics(a))
    assert len(set(asked)) == len(asked)
    # each ask cost at most one TPE proposal: one study trial per ask, plus the one told again
    assert len(s._study.trials) <= 2 * len(asked)

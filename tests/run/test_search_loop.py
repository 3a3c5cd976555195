"""The search loop on real evaluators and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import math

import pytest
import torch

from nas import space as S
from nas.errors import SearchError, StoreError
from nas.evaluate import TrainConfig, make_evaluator
from nas.run import search
from nas.search import make_searcher
from nas.store import Store, TrialState
from search_spaces import nb201


@pytest.fixture(scope="module")
def nb201_eval():
    return make_evaluator("nb201-cifar10")


def test_nb201_search_records_every_trial_once(store_url, nb201_eval):
    sp = nb201.space(cells_per_stage=1)
    result = search(sp, evaluator=nb201_eval, budget=25, storage=store_url, study="nb", seed=3,
                    space_ref="search_spaces.nb201:space", space_args={"cells_per_stage": 1})
    assert [t.number for t in result.trials] == list(range(25))
    assert all(t.state == TrialState.COMPLETE for t in result.trials)
    assert len({t.arch_id for t in result.trials}) == 25  # duplicates are never evaluated twice
    best = result.best()[0]
    assert best.metrics["accuracy"] == max(t.metrics["accuracy"] for t in result.trials)
    assert "test_accuracy" in best.metrics and "lat_ms_pixel3" in best.metrics
    assert Store.open(store_url).get_study("nb").finished_at is not None


def test_same_seed_same_trials(tmp_path, nb201_eval):
    sp = nb201.space(cells_per_stage=1)
    runs = [search(sp, evaluator=nb201_eval, budget=10, storage=str(tmp_path / f"{i}.db"), seed=7)
            for i in range(2)]
    assert [t.arch_id for t in runs[0].trials] == [t.arch_id for t in runs[1].trials]


def test_resume_continues_to_the_budget_without_repeating(tmp_path, nb201_eval):
    sp, db = nb201.space(cells_per_stage=1), str(tmp_path / "r.db")
    search(sp, evaluator=nb201_eval, budget=8, storage=db, study="r", seed=1)
    with pytest.raises(StoreError, match="pass --resume"):
        search(sp, evaluator=nb201_eval, budget=8, storage=db, study="r", seed=1)
    again = search(sp, evaluator=nb201_eval, budget=20, storage=db, study="r", seed=1, resume=True)
    assert len(again.trials) == 20 and len({t.arch_id for t in again.trials}) == 20


def test_a_searcher_instance_runs_as_its_name_does(tmp_path, nb201_eval):
    sp, objectives = nb201.space(cells_per_stage=1), ["accuracy:max", "lat_ms_pixel3:min"]
    by_name = search(sp, evaluator=nb201_eval, searcher="smbo", objectives=objectives, budget=12,
                     storage=str(tmp_path / "a.db"), seed=5, searcher_args={"n_init": 4})
    mine = make_searcher("smbo", sp, objectives, seed=5, n_init=4)
    given = search(sp, evaluator=nb201_eval, searcher=mine, objectives=objectives, budget=12,
                   storage=str(tmp_path / "b.db"), study="mine", seed=5)
    assert [t.arch_id for t in given.trials] == [t.arch_id for t in by_name.trials]
    assert len(mine.history) == 12  # the loop told the very instance it was given
    study = Store.open(str(tmp_path / "b.db")).get_study("mine")
    assert study.searcher == "smbo" and study.searcher_settings == mine.settings()


@pytest.mark.parametrize("problem, match", [
    ("objectives", "optimises"), ("space", "another space"), ("used", "already been told"),
    ("args", "searcher_args"),
])
def test_a_searcher_instance_that_does_not_fit_is_refused(tmp_path, nb201_eval, problem, match):
    sp = nb201.space(cells_per_stage=1)
    made_for = nb201.space(cells_per_stage=2) if problem == "space" else sp
    objectives = ["loss:min"] if problem == "objectives" else ["accuracy:max"]
    s = make_searcher("random", made_for, objectives, seed=0)
    if problem == "used":
        s.tell(s.ask(), {"accuracy": 0.5})
    db = tmp_path / "x.db"
    with pytest.raises(SearchError, match=match):
        search(sp, evaluator=nb201_eval, searcher=s, budget=2, storage=str(db),
               searcher_args={"n_init": 2} if problem == "args" else None)
    assert not db.exists()  # refused before the study was written


def test_study_with_another_space_is_refused(tmp_path, nb201_eval):
    db = str(tmp_path / "f.db")
    search(nb201.space(cells_per_stage=1), evaluator=nb201_eval, budget=2, storage=db, study="x")
    with pytest.raises(StoreError, match="fingerprint"):
        search(nb201.space(cells_per_stage=2), evaluator=nb201_eval, budget=2, storage=db, study="x",
               resume=True)


def test_objective_that_the_evaluator_does_not_give(tmp_path, nb201_eval):
    # found before the first trial, before the database is even made
    with pytest.raises(SearchError, match=r"size_mb: not a metric of this study's evaluator"):
        search(nb201.space(cells_per_stage=1), evaluator=nb201_eval, budget=3,
               storage=str(tmp_path / "o.db"), objectives=["accuracy:max", "size_mb:min"])
    assert not (tmp_path / "o.db").exists()


def test_multi_objective_front_is_non_dominated(tmp_path, nb201_eval):
    r = search(nb201.space(cells_per_stage=1), evaluator=nb201_eval, budget=40,
               storage=str(tmp_path / "m.db"), objectives=["accuracy:max", "lat_ms_pixel3:min"])
    front = r.best()
    assert len(front) >= 2
    for a in front:
        for t in r.trials:
            assert not (t.metrics["accuracy"] > a.metrics["accuracy"]
                        and t.metrics["lat_ms_pixel3"] < a.metrics["lat_ms_pixel3"])


class Boom(torch.nn.Module):
    """Fails only when run on real data (the build-time shape check runs on the meta device)."""

    def forward(self, x):
        if x.device.type != "meta":
            raise RuntimeError("boom: a bug in a user op")
        return x


def test_failing_trials_are_recorded_and_the_search_goes_on(tmp_path):
    sp = S.Space(S.sequential(
        S.conv2d(4, 3), S.choice("op", {"ok": S.identity(), "boom": S.op(Boom)}),
        S.choice("lr_bomb", {"no": S.identity(), "nan": S.op(lambda: NaNs())}),
        S.global_avg_pool(), S.linear(10)), input_shape=(1, 8, 8))
    ev = make_evaluator("digits", config=TrainConfig(epochs=1), measure_latency=False)
    r = search(sp, evaluator=ev, searcher="random", budget=4, storage=str(tmp_path / "b.db"), seed=0)
    states = {t.architecture["op"] + "/" + t.architecture["lr_bomb"]: t for t in r.trials}
    assert len(states) == 4  # the whole space, failures included
    assert states["ok/no"].state == TrialState.COMPLETE and 0 <= states["ok/no"].metrics["accuracy"] <= 1
    assert states["boom/no"].state == TrialState.FAILED and "boom: a bug" in states["boom/no"].error
    assert states["ok/nan"].state == TrialState.FAILED and "non-finite" in states["ok/nan"].error
    assert r.best()[0].architecture == {"op": "ok", "lr_bomb": "no"}


class NaNs(torch.nn.Module):
    def forward(self, x):
        return x * math.nan


def test_worker_processes_evaluate_in_parallel(tmp_path):
    ev = make_evaluator("nb201-cifar10")
    r = search(nb201.space(cells_per_stage=1), evaluator=ev, budget=6, storage=str(tmp_path / "w.db"),
               workers=2, space_ref="search_spaces.nb201:space", space_args={"cells_per_stage": 1})
    assert sorted(t.number for t in r.trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in r.trials)
    assert len({t.extra["worker_pid"] for t in r.trials}) >= 1


def test_workers_need_a_space_reference(tmp_path, nb201_eval):
    with pytest.raises(SearchError, match="needs the space as a reference"):
        search(nb201.space(cells_per_stage=1), evaluator=nb201_eval, budget=2,
               storage=str(tmp_path / "x.db"), workers=2)

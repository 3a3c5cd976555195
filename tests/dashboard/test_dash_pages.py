"""Every dashboard page under Streamlit's AppTest, against a database filled by real searches."""

from __future__ import annotations

import base64
import json
import math
import sqlite3

import numpy as np
import pytest
import torch

try:
    from tests.dashboard.fill import doctor
except ModuleNotFoundError:  # a bare `pytest` run from tests/
    from nas.dashboard.fill import doctor  # type: ignore[no-redef]

from nas.compile.drawing import drawing_dot
from nas.objectives import Objective, pareto_front
from nas.references import LoadError, load_space
from nas.results.weights import trial_weights
from nas.store import Store

torch.set_num_threads(1)


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _arr(values) -> list:
    """Return plotly trace data as a list (numpy arrays arrive as base64 typed arrays)."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def _table(at, column: str):
    """Return the first table on the page that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_studies_page_lists_every_study_with_state_progress_and_best(open_page, dashboard_db):
    at = open_page(dashboard_db)
    _ok(at)
    table = at.dataframe[0].value.set_index("study")
    assert set(table.index) == {"digits-random", "digits-mcts", "nb201-random", "handmade"}
    assert table.loc["nb201-random", "trials"] == "15 / 15"
    assert table.loc["handmade", "failed"] == 1
    assert set(table["state"]) == {"finished"}
    assert table.loc["digits-mcts", "searcher"] == "mcts"
    assert table.loc["nb201-random", "best"].startswith("front of ")
    with Store.open(dashboard_db, readonly=True) as s:
        study = s.get_study("digits-random")
        best = max(t.metrics["accuracy"] for t in s.trials(study.id))
    assert table.loc["digits-random", "best"] == f"accuracy {best:.4g}"
    links = [el.proto.label for el in at.get("page_link")]
    assert "Open study nb201-random" in links


def test_study_page_pareto_front_matches_the_library(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/study.py", study="nb201-random")
    _ok(at)
    assert at.title[0].value == "Study nb201-random"
    figs = {f["layout"]["title"]["text"].split(":")[0]: f for f in _figures(at)}
    assert {"Best accuracy so far", "Pareto front", "Decision importance for accuracy"} <= set(figs)
    with Store.open(dashboard_db, readonly=True) as s:
        trials = s.trials(s.get_study("nb201-random").id)
    objs = [Objective.parse("params:min"), Objective.parse("accuracy:max")]
    points = [[o.sign() * t.metrics[o.name] for o in objs] for t in trials]
    expected = sorted(trials[i].number for i in pareto_front(points))
    front = next(tr for tr in figs["Pareto front"]["data"] if tr["name"] == "Pareto front")
    shown = sorted(int(text.split("<br>")[0].removeprefix("trial ")) for text in front["text"])
    assert shown == expected
    assert "1<-0=" in front["text"][0]  # hover shows the architecture
    bsf = next(tr for tr in figs["Best accuracy so far"]["data"] if tr["mode"] == "lines")
    assert _arr(bsf["y"])[-1] == pytest.approx(max(t.metrics["accuracy"] for t in trials))


def test_study_page_filters_trials_and_shows_failures(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/study.py", study="handmade")
    _ok(at)
    assert len(at.dataframe[0].value) == 2
    at.multiselect[0].set_value(["FAILED"]).run()
    assert list(at.dataframe[0].value["state"]) == ["FAILED"]
    failed = at.dataframe[1].value
    assert failed["error"].iloc[0] == "RuntimeError: CUDA out of memory"
    assert any("at layer 3" in c.value for c in at.code)


def test_study_page_filters_by_decision(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/study.py", study="nb201-random")
    at.selectbox(key="filter_decision").set_value("1<-0").run()
    _ok(at)
    at.multiselect[1].set_value(["none"]).run()
    shown = at.dataframe[0].value
    assert set(shown["1<-0"]) <= {"none"}
    with Store.open(dashboard_db, readonly=True) as s:
        trials = s.trials(s.get_study("nb201-random").id)
    assert len(shown) == sum(t.architecture["1<-0"] == "none" for t in trials)


def test_study_page_draws_learning_curves_of_trained_trials(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/study.py", study="digits-random")
    _ok(at)
    curves = [f for f in _figures(at) if f["layout"]["title"]["text"].startswith("Learning curves")]
    assert curves and _arr(curves[0]["data"][0]["x"]) == [1]  # one epoch


def test_architecture_page_marks_predicted_and_shows_compression(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/architecture.py", study="handmade", trial="1")
    _ok(at)
    metrics = at.dataframe[1].value.set_index("metric")
    assert metrics.loc["latency_ms_predicted", "source"] == "predicted ⚠"
    assert metrics.loc["latency_ms_measured", "source"] == "measured"
    with Store.open(dashboard_db, readonly=True) as s:
        extra = s.get_trial(s.get_study("handmade").id, 1).extra
    quant = _table(at, "precision")
    assert dict(zip(quant["layer"], quant["precision"], strict=True)) == extra["quant_policy"]
    bars = next(f for f in _figures(at) if f["data"][0]["type"] == "bar")["data"][0]
    assert dict(zip(_arr(bars["y"]), _arr(bars["x"]), strict=True)) == extra["prune_allocation"]
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot == drawing_dot(extra["model_drawing"]) and "Conv2d" in dot and "Linear" in dot
    # no weights stored; TorchScript and ONNX need the space's code, which is not trusted here
    assert _buttons(at) == {"TorchScript (.pt)": False, "ONNX (.onnx)": False,
                            "State dict (.safetensors)": False, "Architecture (.json)": True}
    assert any("nas export handmade 1 --format torchscript --space REF" in c.value for c in at.caption)


def _buttons(at) -> dict[str, bool]:
    """Return {download button label: whether it is enabled}, in page order."""
    return {b.proto.label: not b.proto.disabled for b in at.get("download_button")}


def test_a_doctored_database_runs_no_code_it_names(open_page, dashboard_db, tmp_path):
    db, marker = tmp_path / "doctored.db", tmp_path / "pwned"
    doctor(dashboard_db, db, "digits-random", f"id > {marker}")
    with pytest.raises(LoadError):  # the payload is live: rebuilding the space runs it
        load_space("os:system", {"command": f"id > {tmp_path / 'control'}"})
    assert (tmp_path / "control").exists()
    at = open_page(str(db), "views/architecture.py", study="digits-random", trial="0")
    _ok(at)
    assert at.title[0].value == "Trial 0 of digits-random"
    assert at.get("graphviz_chart") and "Conv2d" in at.get("graphviz_chart")[0].proto.spec
    assert _buttons(at)["State dict (.safetensors)"] and not _buttons(at)["ONNX (.onnx)"]
    for page in ("views/studies.py", "views/study.py", "views/compare.py", "views/hardware.py"):
        _ok(open_page(str(db), page, study="digits-random"))
    assert not marker.exists()


def test_architecture_page_hands_out_the_trials_own_weights(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/architecture.py", study="digits-random", trial="0")
    _ok(at)
    with Store.open(dashboard_db, readonly=True) as s:
        study = s.get_study("digits-random")
        trial = s.get_trial(study.id, 0)
        assert trial_weights(s, study, trial)  # what the State dict button hands out, as stored
    assert at.get("graphviz_chart")[0].proto.spec == drawing_dot(trial.extra["model_drawing"])
    assert _buttons(at) == {"TorchScript (.pt)": False, "ONNX (.onnx)": False,
                            "State dict (.safetensors)": True, "Architecture (.json)": True}


def test_a_tabular_trial_says_it_has_no_drawing(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/architecture.py", study="nb201-random", trial="3")
    _ok(at)
    assert not at.get("graphviz_chart")
    assert any("No drawing of the model is stored" in c.value for c in at.caption)


def test_a_trusting_dashboard_rebuilds_the_space_for_exports(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/architecture.py", flags=("--trust-spaces",),
                   study="nb201-random", trial="3")
    _ok(at)
    assert "digraph" in at.get("graphviz_chart")[0].proto.spec  # drawn from the rebuilt space
    assert _buttons(at) == {"TorchScript (.pt)": True, "ONNX (.onnx)": True,
                            "State dict (.safetensors)": False, "Architecture (.json)": True}
    assert not any("nas export" in c.value for c in at.caption)


def test_architecture_page_follows_the_url_after_another_choice(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/architecture.py", study="digits-mcts", trial="1")
    _ok(at)
    assert at.title[0].value == "Trial 1 of digits-mcts"
    at.query_params["study"], at.query_params["trial"] = "nb201-random", "3"
    at.run()
    assert at.title[0].value == "Trial 3 of nb201-random"


def test_compare_page_best_so_far_and_hypervolume(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/compare.py")
    _ok(at)
    fig = _figures(at)[0]
    assert {t["name"] for t in fig["data"]} == {"digits-random", "digits-mcts", "handmade"}
    at.multiselect[0].set_value(["nb201-random"]).run()
    at.radio[0].set_value("hypervolume").run()
    _ok(at)
    hv = _arr(_figures(at)[0]["data"][0]["y"])
    assert all(b >= a for a, b in zip(hv, hv[1:], strict=False)) and 0 < hv[-1] <= 1.21


def test_hardware_page_band_and_measurements(open_page, dashboard_db):
    at = open_page(dashboard_db, "views/hardware.py")
    _ok(at)
    assert at.metric[0].value == "100%"  # 1.3 ms predicted for 1.2 ms measured is inside ±10%
    chart = _figures(at)[0]
    assert {"±10%", "predicted = measured", "handmade"} <= {t.get("name") for t in chart["data"]}
    table = _table(at, "rows")
    assert list(table["device_id"]) == ["cpu-test"] and table["rows"].iloc[0] == 3


@pytest.mark.parametrize("page", ["views/studies.py", "views/study.py", "views/architecture.py",
                                  "views/compare.py", "views/hardware.py"])
def test_empty_database_says_what_to_run(open_page, tmp_path, page):
    db = tmp_path / "empty.db"
    Store.open(str(db)).close()
    at = open_page(str(db), page)
    assert not at.exception
    texts = " ".join(i.value for i in at.info)
    if page != "views/hardware.py":
        assert "nas search" in texts
    else:
        assert "No latency measurements" in texts


@pytest.mark.parametrize("kind", ["foreign", "not-sqlite", "missing"])
def test_unreadable_database_is_a_clear_error(open_page, tmp_path, kind):
    db = tmp_path / "x.db"
    if kind == "foreign":
        with sqlite3.connect(db) as c:
            c.execute("create table invoices (id integer)")
    elif kind == "not-sqlite":
        db.write_text("hello")
    at = open_page(str(db))
    assert not at.exception
    assert at.error and "Cannot read the results database" in at.error[0].value
    assert {"foreign": "another application", "not-sqlite": "not an SQLite database",
            "missing": "no database"}[kind] in at.error[0].value


@pytest.mark.postgres
def test_studies_and_study_pages_on_postgresql(open_page, postgres_url):
    from nas.evaluate import make_evaluator
    from nas.references import load_space_and_args
    from nas.run import search

    sp, args = load_space_and_args("search_spaces.nb201:space", {}, {"num_classes": 10})
    search(sp, evaluator=make_evaluator("nb201-cifar10"), budget=6, storage=postgres_url,
           study="pg-dash", space_ref="search_spaces.nb201:space", space_args=args)
    at = open_page(postgres_url)
    _ok(at)
    row = at.dataframe[0].value.set_index("study").loc["pg-dash"]
    assert row["trials"] == "6 / 6" and row["state"] == "finished"
    at = open_page(postgres_url, "views/study.py", study="pg-dash")
    _ok(at)
    assert len(at.dataframe[0].value) == 6 and not math.isnan(at.dataframe[0].value["accuracy"].max())


def test_a_running_study_is_live_and_a_silent_one_died(open_page, tmp_path):
    from datetime import UTC, datetime, timedelta

    from nas.dashboard import data
    from nas.store import StudySpec

    db = str(tmp_path / "live.db")
    sp = load_space("search_spaces.convnet:space", {})
    with Store.open(db) as s:
        study = s.create_study(StudySpec(
            name="live", space_ref="search_spaces.convnet:space", space_fingerprint=sp.fingerprint,
            space_description=sp.describe(), searcher="random", searcher_settings={},
            objectives=["accuracy:max"], constraints=[], evaluator={}, seed=0, budget=5))
        arch = sp.sample(0)
        s.start_trial(study.id, arch.id, arch.to_json())
        record = s.get_study("live")
        sd = data.load_study(s, record)
    at = open_page(db)
    _ok(at)
    assert at.dataframe[0].value["state"].tolist() == ["running"]
    assert at.toggle[0].value is True  # live refresh is on while a search runs
    later = datetime.now(UTC) + data.STALE_AFTER + timedelta(minutes=1)
    assert data.study_state(record, sd, now=later) == "died"

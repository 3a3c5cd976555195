"""An architecture: decisions, the compiled model as a graph, metrics, compression, downloads.

Rebuilding the model uses `nas.loading.study_space` and the downloads `nas.export`: the only
places the dashboard reaches past the store, because drawing and exporting need the real module.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import common, data, downloads, graph
from nas.errors import NasError
from nas.loading import study_space
from nas.space import Architecture, Space
from nas.store import StudyRecord, TrialRecord


@st.cache_resource(show_spinner="Rebuilding the space...", max_entries=8)
def _space(space_ref: str, args_json: str, fingerprint: str, name: str) -> Space:
    return study_space(space_ref, json.loads(args_json), fingerprint, name)


def space_of(study: StudyRecord) -> Space:
    """Return the study's space rebuilt from its reference (LoadError if it changed or is gone)."""
    args = json.dumps(study.user_attrs.get("space_args", {}), sort_keys=True)
    return _space(study.space_ref, args, study.space_fingerprint, study.name)


@st.cache_data(show_spinner="Drawing the model...", max_entries=64)
def _dot(_space_obj: Space, fingerprint: str, arch_json: str) -> tuple[str, str]:
    return graph.model_dot(_space_obj.build(Architecture.from_json(arch_json)))


def pick_trial(study: StudyRecord) -> TrialRecord | None:
    """Return the trial chosen in a selectbox (default: the `trial` query parameter, else the best)."""
    if study.n_trials == 0:
        st.info(f"Study {study.name} has no trials yet.")
        return None
    # Trial numbers are gap-free (the store assigns them), so the list needs no trial read.
    numbers = list(range(study.n_trials))
    number = common.synced_select("Trial", numbers, "trial", "arch_trial", default=0)
    return common.store().get_trial(study.id, number)


def metrics_table(trial: TrialRecord) -> pd.DataFrame:
    """Return one row per metric: value, unit, and whether it was measured or predicted."""
    rows = [{"metric": k, "value": v, "unit": data.unit(k),
             "source": "predicted ⚠" if k in trial.predicted else "measured"}
            for k, v in sorted(trial.metrics.items())]
    return pd.DataFrame(rows, columns=["metric", "value", "unit", "source"])


def show_metrics(trial: TrialRecord) -> None:
    """Draw the metrics, predicted ones marked, and measured vs predicted latency when both exist."""
    st.subheader("Metrics")
    st.dataframe(metrics_table(trial), hide_index=True, key="metrics_table")
    if trial.predicted:
        st.caption(f"⚠ predicted by a model, not measured: {', '.join(trial.predicted)}")
    m = trial.metrics
    if "latency_ms_measured" in m and "latency_ms_predicted" in m:
        err = m["latency_ms_predicted"] / m["latency_ms_measured"] - 1 if m["latency_ms_measured"] else 0
        a, b = st.columns(2)
        a.metric("latency, measured [ms]", f"{m['latency_ms_measured']:.3g}")
        b.metric("latency, predicted [ms]", f"{m['latency_ms_predicted']:.3g}", f"{err:+.1%}",
                 delta_color="off")


def show_compression(trial: TrialRecord) -> None:
    """Draw the quantization policy and the pruning allocation, when the trial has them."""
    policy, alloc = trial.extra.get("quant_policy"), trial.extra.get("prune_allocation")
    if not policy and not alloc:
        st.caption("No quantization policy or pruning allocation recorded for this trial.")
        return
    left, right = st.columns(2)
    if policy:
        with left:
            st.subheader("Quantization policy")
            st.dataframe(pd.DataFrame({"layer": list(policy), "precision": list(policy.values())}),
                         hide_index=True, key="quant_table")
    if alloc:
        with right:
            st.subheader("Pruning allocation")
            fig = go.Figure(go.Bar(x=list(alloc.values()), y=list(alloc), orientation="h"))
            fig.update_layout(xaxis_title="pruned fraction of weights", yaxis_title="layer",
                              height=120 + 24 * len(alloc), margin={"t": 10, "b": 10},
                              yaxis={"autorange": "reversed"})
            fig.update_xaxes(range=[0, 1], tickformat=".0%")
            st.plotly_chart(fig, key="prune_chart")


def _export(space: Space | None, trial: TrialRecord, weights: bytes | None,
            fmt: str) -> Callable[[], bytes]:
    """Return a function making the download, so exports run only when a button is clicked."""
    return lambda: downloads.export_bytes(space, trial.architecture, weights, fmt)


def show_model(study: StudyRecord, trial: TrialRecord) -> None:
    """Draw the compiled model and offer the downloads."""
    st.subheader("Model")
    try:
        space = space_of(study)
    except NasError as exc:
        st.warning(f"Cannot rebuild this study's space, so no drawing or model downloads: {exc}")
        space = None
    if space is not None:
        dot, kind = _dot(space, study.space_fingerprint, Architecture(trial.architecture).to_json())
        st.caption(f"The compiled model ({kind}).")
        st.graphviz_chart(dot)
    weights = common.store().get_weights(study.space_fingerprint, trial.arch_id, "trained")
    st.caption("Downloads use the trained weights stored with the trial." if weights else
               "No trained weights stored for this architecture: model downloads are untrained.")
    cols = st.columns(len(downloads.FORMATS))
    for col, (fmt, (suffix, mime, text)) in zip(cols, downloads.FORMATS.items(), strict=True):
        col.download_button(text, _export(space, trial, weights, fmt), key=f"dl_{fmt}",
                            file_name=f"{study.name}-trial{trial.number}{suffix}", mime=mime,
                            disabled=space is None and fmt != "json", on_click="ignore")


study = common.pick_study(common.studies(), key="arch_study")
trial = pick_trial(study) if study is not None else None
if trial is None:
    st.stop()
st.title(f"Trial {trial.number} of {study.name}")
st.caption(f"architecture `{trial.arch_id}` · {trial.state.value}"
           + (f" · {trial.duration_s:.1f} s" if trial.duration_s is not None else ""))
if trial.error:
    st.error(f"This trial failed: {trial.error}")
left, right = st.columns([1, 2])
with left:
    st.subheader("Decisions")
    st.dataframe(pd.DataFrame({"decision": list(trial.architecture),
                               "value": [str(v) for v in trial.architecture.values()]}),
                 hide_index=True, key="decisions_table")
with right:
    show_metrics(trial)
show_compression(trial)
show_model(study, trial)

"""An architecture: decisions, the model as stored at trial time, metrics, compression, downloads.

A database is data: this page draws the model from the drawing each trial stored
(`nas.compile.drawing`) and hands out the trial's stored weights as they are; it imports the
space code the database names only when the dashboard was started with --trust-spaces, for the
downloads that need the model itself (TorchScript, ONNX).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from nas.compile.drawing import drawing_dot, model_drawing
from nas.dashboard import common, data, downloads
from nas.errors import NasError
from nas.results.weights import WEIGHTS_REF, trial_weights
from nas.space import Architecture, Space
from nas.store import StudyRecord, TrialRecord

NO_DRAWING = ("No drawing of the model is stored with this trial: it was never built (a tabular "
              "benchmark such as NAS-Bench-201 looks its metrics up) or it ran before trials kept one.")


@st.cache_resource(show_spinner="Rebuilding the space...", max_entries=8)
def _space(space_ref: str, args_json: str, fingerprint: str, name: str) -> Space:
    from nas.references import study_space  # imported here: only a trusting dashboard gets this far

    return study_space(space_ref, json.loads(args_json), fingerprint, name)


def trusted_space(study: StudyRecord) -> Space | None:
    """Return the study's space rebuilt from the code the database names (--trust-spaces only)."""
    if not common.trusts_spaces():
        return None
    args = json.dumps(study.user_attrs.get("space_args", {}), sort_keys=True)
    try:
        return _space(study.space_ref, args, study.space_fingerprint, study.name)
    except NasError as exc:
        st.warning(f"Cannot rebuild this study's space, so no TorchScript or ONNX: {exc}")
        return None


@st.cache_data(show_spinner="Drawing the model...", max_entries=64)
def _rebuilt_drawing(_space_obj: Space, fingerprint: str, arch_json: str) -> dict[str, Any]:
    return model_drawing(_space_obj.build(Architecture.from_json(arch_json)))


@st.cache_data(show_spinner=False, max_entries=8)
def _weights(url: str, _study: StudyRecord, _trial: TrialRecord, key: str) -> bytes | None:
    return trial_weights(common.store(), _study, _trial)


def weights_of(study: StudyRecord, trial: TrialRecord) -> bytes | None:
    """Return the weights the trial itself trained, as stored (cached while the trial stays as it is)."""
    key = json.dumps([trial.id, trial.state.value, trial.extra.get(WEIGHTS_REF)], sort_keys=True,
                     default=str)
    return _weights(common.db_url(), study, trial, key)


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


def show_drawing(study: StudyRecord, trial: TrialRecord, space: Space | None) -> None:
    """Draw the model from the drawing stored with the trial (or, trusted, from the rebuilt space)."""
    drawing, source = trial.extra.get("model_drawing"), "as the trial built it"
    if drawing is None and space is not None:
        arch_json = Architecture(trial.architecture).to_json()
        try:
            drawing = _rebuilt_drawing(space, study.space_fingerprint, arch_json)
        except Exception as exc:  # noqa: BLE001 - the user's code failed to build: say so, keep the page
            st.caption(f"The space could not build this architecture: {type(exc).__name__}: {exc}")
            return
        source = f"rebuilt from the space's code ({common.TRUST_FLAG})"
    if drawing is None:
        st.caption(NO_DRAWING)
        return
    try:
        dot = drawing_dot(drawing)
    except NasError as exc:
        st.caption(f"The drawing stored with this trial cannot be shown: {exc}")
        return
    cut = " (cut short: too large to draw whole)" if drawing.get("truncated") else ""
    st.caption(f"The compiled model ({drawing['kind']}), {source}{cut}.")
    st.graphviz_chart(dot)
    if isinstance(drawing.get("text"), str):
        with st.expander("Layers, as PyTorch prints the model"):
            st.code(drawing["text"] + ("\n..." if drawing.get("text_truncated") else ""), language=None)


def _export(space: Space | None, trial: TrialRecord, weights: bytes | None,
            fmt: str) -> Callable[[], bytes]:
    """Return a function making the download, so exports run only when a button is clicked."""
    return lambda: downloads.export_bytes(space, trial.architecture, weights, fmt)


def _how_to_export(study: StudyRecord, trial: TrialRecord) -> str:
    """Return the caption saying how to get TorchScript and ONNX without trusting the database."""
    name = shlex.quote(study.name).replace("`", "")
    return ("TorchScript and ONNX rebuild the model, which runs the space's code; the dashboard runs "
            "no code a database names. Export with "
            f"`nas export {name} {trial.number} --format torchscript --space REF --out model.pt` "
            "(REF: the space you searched), or restart the dashboard with "
            f"`nas dashboard {common.TRUST_FLAG}` if you trust this database.")


def show_downloads(study: StudyRecord, trial: TrialRecord, space: Space | None) -> None:
    """Offer the downloads: JSON always, the stored weights when there are some, models if trusted."""
    weights = weights_of(study, trial)
    st.caption("The state dict is the trained weights stored with this trial, byte for byte." if weights
               else "No trained weights are stored for this trial (a tabular benchmark never trains, and "
               "a trial that did not complete keeps none).")
    cols = st.columns(len(downloads.FORMATS))
    for col, (fmt, (suffix, mime, text)) in zip(cols, downloads.FORMATS.items(), strict=True):
        off = (fmt == "state-dict" and weights is None) or (fmt in downloads.NEEDS_CODE and space is None)
        col.download_button(text, _export(space, trial, weights, fmt), key=f"dl_{fmt}",
                            file_name=f"{study.name}-trial{trial.number}{suffix}", mime=mime,
                            disabled=off, on_click="ignore")
    if space is None and not common.trusts_spaces():
        st.caption(_how_to_export(study, trial))


def show_model(study: StudyRecord, trial: TrialRecord) -> None:
    """Draw the model and offer the downloads."""
    st.subheader("Model")
    space = trusted_space(study)
    show_drawing(study, trial, space)
    show_downloads(study, trial, space)


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

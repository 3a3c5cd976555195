"""A study: its trials, best-so-far, the Pareto front, decisions vs objective, curves, failures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nas.dashboard import charts, common, data

study = common.pick_study(common.studies(), key="study_pick")
if study is None:
    st.stop()
sd = common.study_data(study)
df = sd.df
st.title(f"Study {study.name}")
st.caption(f"space `{study.space_ref}` · searcher `{study.searcher}` · objectives "
           f"{', '.join(study.objectives)} · constraints {', '.join(study.constraints) or 'none'} · "
           f"{study.n_trials} trials of a budget of {study.budget}")
if df.empty:
    st.info("This study has no trials yet; it fills in as the search runs "
            f"(`nas search ... --study {study.name} --resume` continues it).")
    st.stop()

numeric = [m for m in sd.metrics if df[m].notna().any()]
objectives = [o.partition(":")[0] for o in study.objectives]
main = next((o for o in objectives if o in numeric), numeric[0] if numeric else None)


def trials_table() -> None:
    """Draw the filterable trials table and a link into the selected architecture."""
    st.subheader("Trials")
    c1, c2, c3 = st.columns([2, 2, 3])
    states = c1.multiselect("State", sorted(df["state"].unique()), default=sorted(df["state"].unique()))
    decision = c2.selectbox("Filter by decision", ["(none)", *sd.decisions], key="filter_decision")
    shown = df[df["state"].isin(states)]
    if decision != "(none)":
        col = sd.decisions[decision]
        options = sorted(df[col].dropna().astype(str).unique())
        picked = c3.multiselect(f"{decision} is one of", options, default=options)
        shown = shown[shown[col].astype(str).isin(picked)]
    # Per-device latencies (NAS-Bench-201 records 28 of them) only on request: they crowd the table.
    per_device = [m for m in numeric if m.startswith("lat_ms_")]
    wide = bool(per_device) and st.toggle(f"Show the {len(per_device)} per-device latency columns",
                                          key="wide_table")
    metric_cols = [m for m in numeric if wide or m not in per_device]
    cols = ["number", "state", *metric_cols, *sd.decisions.values(), "duration_s", "predicted",
            "arch_id"]
    event = st.dataframe(shown[cols], hide_index=True, on_select="rerun", selection_mode="single-row",
                         key="trials_table",
                         column_config={"duration_s": st.column_config.NumberColumn("duration [s]",
                                                                                    format="%.1f")})
    st.caption(f"{len(shown)} of {len(df)} trials; click a column to sort, a row to open it. "
               "Predicted metrics are listed in the `predicted` column.")
    rows = event.selection.rows if event is not None else []
    if rows:
        st.switch_page("views/architecture.py", query_params={
            "study": study.name, "trial": str(int(shown["number"].iloc[rows[0]]))})
    best = _best_numbers(1)
    if best:
        st.page_link("views/architecture.py", label=f"Open the best architecture (trial {best[0]})",
                     icon=":material/account_tree:",
                     query_params={"study": study.name, "trial": str(best[0])})


def _best_numbers(k: int) -> list[int]:
    """Return the numbers of the k best COMPLETE trials on the main objective."""
    if main is None:
        return []
    ok = df[["number", main]][data.usable(sd, study.constraints) & df[main].notna()]
    asc = data.direction(main, study.objectives) == "min"
    return [int(n) for n in ok.sort_values(main, ascending=asc)["number"].head(k)]


def progress_charts() -> None:
    """Draw best-so-far and the Pareto front for any two metrics."""
    if main is None:
        st.info("No numeric metrics recorded yet.")
        return
    left, right = st.columns(2)
    with left:
        st.subheader("Best so far")
        metric = st.selectbox("Metric", numeric, index=numeric.index(main), key="bsf_metric")
        how = data.direction(metric, study.objectives)
        st.plotly_chart(charts.best_so_far(sd, metric, how), key="bsf_chart")
    with right:
        st.subheader("Pareto front")
        if len(numeric) < 2:
            st.info("A Pareto front needs two numeric metrics; this study records one.")
            return
        second = next((o for o in objectives if o in numeric and o != main),
                      "params" if "params" in numeric and main != "params" else
                      next(m for m in numeric if m != main))
        a, b = st.columns(2)
        x = a.selectbox("x", numeric, index=numeric.index(second), key="pareto_x")
        y = b.selectbox("y", numeric, index=numeric.index(main), key="pareto_y")
        st.plotly_chart(charts.pareto(sd, x, y, study.objectives, study.constraints), key="pareto")


def decisions_section() -> None:
    """Draw the importance ranking and the per-option distribution of one decision."""
    if main is None or not sd.decisions:
        return
    st.subheader("Decisions and the objective")
    metric = st.selectbox("Objective", numeric, index=numeric.index(main), key="imp_metric")
    ranking = data.importance(sd, metric)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.importance(ranking, metric), key="importance")
    with right:
        labels = list(ranking["decision"]) or list(sd.decisions)
        decision = st.selectbox("Decision", labels, key="dist_decision")
        st.plotly_chart(charts.distribution(sd, decision, metric), key="distribution")


def curves_section() -> None:
    """Draw the learning curves of the chosen trials."""
    st.subheader("Learning curves")
    done = [int(n) for n in df.loc[df["state"] == "COMPLETE", "number"]]
    chosen = st.multiselect("Trials", done, default=[n for n in _best_numbers(3) if n in done],
                            key="curve_trials")
    ids = dict(zip(df["number"], df["id"], strict=True))
    curves = {n: common.curve(common.db_url(), int(ids[n])) for n in chosen}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        st.info("No learning curves for these trials: trained evaluators store one per epoch; "
                "tabular benchmarks such as NAS-Bench-201 store none.")
        return
    keys = sorted({k for c in curves.values() for row in c for k in row if k != "epoch"})
    value = st.selectbox("Value", keys, index=keys.index("loss") if "loss" in keys else 0,
                         key="curve_value")
    st.plotly_chart(charts.curves(curves, value), key="curves")


def failures_section() -> None:
    """List the failed trials with their error text."""
    st.subheader("Failed trials")
    failed = df[df["state"] == "FAILED"]
    if failed.empty:
        st.success("No trial failed.")
        return
    first = failed["error"].fillna("").str.split("\n").str[0]
    st.dataframe(pd.DataFrame({"number": failed["number"], "error": first,
                               "arch_id": failed["arch_id"]}), hide_index=True, key="failed_table")
    for _, row in failed.head(20).iterrows():
        with st.expander(f"trial {row['number']}: full error"):
            st.code(row["error"] or "(no error text)", language="text")


trials_table()
progress_charts()
decisions_section()
curves_section()
failures_section()

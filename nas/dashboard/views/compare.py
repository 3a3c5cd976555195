"""Compare: several studies on one chart, best-so-far or hypervolume against trials evaluated."""

from __future__ import annotations

from collections import Counter

import numpy as np
import streamlit as st

from nas.dashboard import charts, common, data

st.title("Compare studies")
all_studies = common.studies()
if not all_studies:
    common.empty_state()
    st.stop()
by_name = {s.name: s for s in all_studies}
# Default: the studies on the most common space, as papers compare searchers on one space.
space = Counter(s.space_fingerprint for s in all_studies).most_common(1)[0][0]
default = [s.name for s in all_studies if s.space_fingerprint == space][:6]
names = st.multiselect("Studies", list(by_name), default=default, key="cmp_studies")
if not names:
    st.info("Choose studies to compare (e.g. MCTS, SMBO and random on the same space).")
    st.stop()
chosen = [by_name[n] for n in names]
datas = {s.name: common.study_data(s) for s in chosen}
common_metrics = sorted(set.intersection(*[
    {m for m in d.metrics if d.df[m].notna().any()} for d in datas.values()]))
if not common_metrics:
    st.info("These studies share no recorded metric; choose studies that optimise the same thing.")
    st.stop()
objectives = chosen[0].objectives
first = [o.partition(":")[0] for o in objectives if o.partition(":")[0] in common_metrics]
mode = st.radio("Chart", ["best so far", "hypervolume"], horizontal=True, key="cmp_mode")

if mode == "best so far":
    metric = st.selectbox("Metric", common_metrics,
                          index=common_metrics.index(first[0]) if first else 0, key="cmp_metric")
    how = data.direction(metric, objectives)
    lines = {}
    for s in chosen:
        best = data.best_so_far(datas[s.name], metric, how)
        lines[s.name] = (np.arange(1, len(best) + 1), best.to_numpy())
    st.plotly_chart(charts.compare(lines, data.label(metric), f"Best {metric} ({how}) so far"),
                    key="cmp_chart")
else:
    if len(common_metrics) < 2:
        st.info("Hypervolume needs two metrics the studies share.")
        st.stop()
    defaults = first[:2] if len(first) >= 2 else [*first, *[m for m in common_metrics
                                                            if m not in first]][:2]
    a, b = st.columns(2)
    x = a.selectbox("First objective", common_metrics, index=common_metrics.index(defaults[0]),
                    key="hv_x")
    y = b.selectbox("Second objective", common_metrics, index=common_metrics.index(defaults[1]),
                    key="hv_y")
    signs = np.array([1.0 if data.direction(m, objectives) == "max" else -1.0 for m in (x, y)])
    values = {}
    for s in chosen:
        df = datas[s.name].df
        v = df[[x, y]].to_numpy(dtype=float, copy=True)
        v[~data.usable(datas[s.name], s.constraints).to_numpy()] = np.nan
        values[s.name] = v
    stacked = np.vstack(list(values.values()))
    lo, hi = np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0)
    lines = {n: data.hypervolume_curve(v, lo, hi, signs) for n, v in values.items()}
    st.plotly_chart(charts.compare(lines, "hypervolume (normalised, reference 1.1)",
                                   f"Hypervolume of {x} ({data.direction(x, objectives)}) and "
                                   f"{y} ({data.direction(y, objectives)})"), key="cmp_chart")
    st.caption("Both objectives are scaled to [0, 1] over all chosen studies (0 = best), and the "
               "area each study dominates is measured up to the point (1.1, 1.1).")

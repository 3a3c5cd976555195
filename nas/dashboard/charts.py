"""Plotly figures for the pages: labelled axes with units, readable hover text, WebGL when large."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nas.dashboard import data
from nas.dashboard.data import StudyData, label

# Above this many points a scatter is drawn with WebGL, which stays smooth on 10,000 trials.
GL_POINTS = 2000
BAND = 0.10


def _scatter(n: int) -> type:
    return go.Scattergl if n > GL_POINTS else go.Scatter


def _layout(fig: go.Figure, x: str, y: str, title: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=420,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "y": -0.2})
    return fig


def best_so_far(sd: StudyData, metric: str, how: str) -> go.Figure:
    """Return the best-so-far line of `metric` against trial number, with every trial as a dot."""
    best = data.best_so_far(sd, metric, how)
    df = sd.df[["number", metric]][sd.df["state"] == "COMPLETE"]
    fig = go.Figure()
    fig.add_trace(_scatter(len(df))(x=df["number"], y=df[metric], mode="markers", name="trial",
                                    marker={"size": 5, "color": "lightgray"}))
    fig.add_trace(go.Scatter(x=best.index, y=best.to_numpy(), mode="lines", name=f"best ({how})",
                             line={"shape": "hv", "width": 2}))
    return _layout(fig, "trial number", label(metric), f"Best {metric} so far")


def pareto(sd: StudyData, x: str, y: str, objectives: list[str], constraints: list[str]) -> go.Figure:
    """Return the Pareto front of x and y: front trials bold and joined, dominated ones faded."""
    ok = data.usable(sd, constraints) & sd.df[x].notna() & sd.df[y].notna()
    df = sd.df[list(dict.fromkeys(["number", x, y, data.HOVER]))][ok]
    signs = np.array([1.0 if data.direction(m, objectives) == "max" else -1.0 for m in (x, y)])
    front = data.pareto_mask(df[[x, y]].to_numpy() * signs) if len(df) else np.zeros(0, bool)
    hover = "trial " + df["number"].astype(str) + "<br>" + df[data.HOVER]
    fig = go.Figure()
    fig.add_trace(_scatter(len(df))(
        x=df[x][~front], y=df[y][~front], mode="markers", name="dominated", text=hover[~front],
        hovertemplate="%{text}<extra></extra>", marker={"color": "gray", "opacity": 0.25, "size": 6}))
    f = df[front].assign(hover=hover[front]).sort_values(x)
    fig.add_trace(go.Scatter(x=f[x], y=f[y], mode="lines+markers", name="Pareto front",
                             text=f["hover"], hovertemplate="%{text}<extra></extra>",
                             line={"shape": "hv"}, marker={"size": 9, "color": "crimson"}))
    title = (f"Pareto front: {x} ({data.direction(x, objectives)}) vs "
             f"{y} ({data.direction(y, objectives)}), {int(front.sum())} of {len(df)}")
    return _layout(fig, label(x), label(y), title)


def importance(ranking: pd.DataFrame, metric: str) -> go.Figure:
    """Return a bar chart of decisions by the share of the metric's variance they explain."""
    r = ranking.iloc[::-1]
    fig = go.Figure(go.Bar(x=r["importance"], y=r["decision"], orientation="h",
                           hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_xaxes(tickformat=".0%")
    return _layout(fig, f"share of {metric} variance explained (eta²)", "decision",
                   f"Decision importance for {metric}")


def distribution(sd: StudyData, decision: str, metric: str) -> go.Figure:
    """Return box plots of the metric for each option of one decision."""
    col = sd.decisions[decision]
    df = sd.df[[col, metric]][(sd.df["state"] == "COMPLETE") & sd.df[metric].notna()]
    option = df[col].astype(str).where(df[col].notna(), "(inactive)")
    fig = go.Figure()
    for value in sorted(option.unique()):
        fig.add_trace(go.Box(y=df[metric][option == value], name=value, boxpoints="outliers"))
    fig.update_layout(showlegend=False)
    return _layout(fig, decision, label(metric), f"{metric} by option of {decision}")


def curves(curves_by_trial: dict[int, list[dict]], value: str) -> go.Figure:
    """Return one line per trial of `value` against epoch."""
    fig = go.Figure()
    for number, rows in curves_by_trial.items():
        pts = [(r["epoch"], r.get(value)) for r in rows if r.get(value) is not None]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=f"trial {number}"))
    return _layout(fig, "epoch", label(value), f"Learning curves: {value}")


def compare(lines: dict[str, tuple[np.ndarray, np.ndarray]], y_title: str, title: str) -> go.Figure:
    """Return one line per study (x: trials evaluated, y: best-so-far or hypervolume)."""
    fig = go.Figure()
    for name, (x, y) in lines.items():
        mode = "lines+markers" if len(x) <= 50 else "lines"  # a short study is a few dots
        fig.add_trace(go.Scatter(x=x, y=y, mode=mode, name=name, line={"shape": "hv"}))
    return _layout(fig, "trials evaluated", y_title, title)


def latency_band(df: pd.DataFrame) -> go.Figure:
    """Return predicted vs measured latency with the y = x line and the ±10% band."""
    hi = float(np.nanmax(df[["latency_ms_measured", "latency_ms_predicted"]].to_numpy())) * 1.1
    line = np.array([0.0, hi])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=line, y=line * (1 - BAND), mode="lines", line={"width": 0},
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=line, y=line * (1 + BAND), mode="lines", line={"width": 0},
                             fill="tonexty", fillcolor="rgba(0,128,0,0.15)", name="±10%",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=line, y=line, mode="lines", name="predicted = measured",
                             line={"dash": "dash", "color": "green"}))
    for study, part in df.groupby("study"):
        fig.add_trace(_scatter(len(part))(
            x=part["latency_ms_measured"], y=part["latency_ms_predicted"], mode="markers",
            name=str(study), text="trial " + part["number"].astype(str),
            hovertemplate="%{text}<br>measured %{x:.3g} ms<br>predicted %{y:.3g} ms<extra></extra>"))
    return _layout(fig, "measured latency [ms]", "predicted latency [ms]",
                   "Predicted vs measured latency")

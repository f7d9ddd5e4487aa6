"""The report's figures: for each, a pure info extraction (a small record) and a pure plotting function.

Per-trial figures show validation (or cross-validation) values only; test values appear only for the
chosen model (ROC, PR, confusion matrix). Records are NamedTuples of plain lists, so tests compare
them exactly; the plotting functions only arrange them.
"""

from __future__ import annotations

from html import escape
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "ConfusionInfo",
    "CostInfo",
    "CurveInfo",
    "HistoryInfo",
    "StatesInfo",
    "confusion_info",
    "cost_info",
    "curve_info",
    "history_info",
    "plot_confusion",
    "plot_cost",
    "plot_errors",
    "plot_history",
    "plot_pr",
    "plot_precision_recall",
    "plot_roc",
    "plot_states",
    "states_info",
]

_LAYOUT = {
    "template": "plotly_white",
    "height": 380,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
}


# --- per-trial figures (validation values) -----------------------------------------------------


class CostInfo(NamedTuple):
    """Complete trials sorted by weight, with what the cost figures need."""

    number: list[int]
    weight: list[float]
    value: list[float]
    se: list[float]
    tp: list[int]
    fp: list[int]
    tn: list[int]
    fn: list[int]
    chosen: float | None
    theory: float
    plateau: tuple[float, float] | None


def cost_info(trials: pd.DataFrame, best: dict[str, Any] | None, theory: float) -> CostInfo:
    done = trials[trials["state"] == "complete"].sort_values(["pos_weight", "number"])
    se = done["value_se"].fillna(0.0)
    return CostInfo(
        done["number"].astype(int).tolist(),
        done["pos_weight"].tolist(),
        done["value"].tolist(),
        se.tolist(),
        *(done[c].astype(int).tolist() for c in ("tp", "fp", "tn", "fn")),
        None if best is None else best["pos_weight"],
        theory,
        None if best is None else tuple(best["plateau"]),
    )


def _hover(info: CostInfo) -> list[str]:
    return [
        f"trial {n}<br>w = {w:.4g}<br>cost {v:.4f} ± {s:.4f}<br>FN {fn}, FP {fp}"
        for n, w, v, s, fn, fp in zip(
            info.number, info.weight, info.value, info.se, info.fn, info.fp, strict=True
        )
    ]


def _mark_weights(fig: go.Figure, info: CostInfo) -> None:
    # Shapes take data values on a log axis but annotations take log10 units (plotly.js#1258),
    # so the labels are placed separately, in log10.
    marks = [(info.theory, "#7f7f7f", "dot", f"theory w* = {info.theory:.3g}", 1.0)]
    if info.chosen is not None:
        marks.append((info.chosen, "#d62728", "solid", f"chosen w = {info.chosen:.3g}", 0.92))
    if info.plateau is not None:
        lo, hi = info.plateau
        fig.add_vrect(x0=lo, x1=hi, fillcolor="#2ca02c", opacity=0.10, line_width=0)
        fig.add_annotation(
            x=float(np.log10(lo)),
            y=0.84,
            xref="x",
            yref="paper",
            xanchor="left",
            text=f"plateau {lo:.3g}-{hi:.3g}",
            showarrow=False,
            font={"color": "#2ca02c", "size": 11},
        )
    for x, color, dash, text, y in marks:
        fig.add_vline(x=x, line_dash=dash, line_color=color)
        fig.add_annotation(
            x=float(np.log10(x)),
            y=y,
            xref="x",
            yref="paper",
            xanchor="left",
            text=text,
            showarrow=False,
            font={"color": color, "size": 11},
        )


def _log_range(info: CostInfo) -> list[float]:
    # Pinned to the trials and marks, with a margin (the data's own extent, in log10 units).
    xs = [*info.weight, info.theory] + ([info.chosen] if info.chosen is not None else [])
    return [float(np.log10(min(xs))) - 0.1, float(np.log10(max(xs))) + 0.1]


def plot_cost(info: CostInfo) -> go.Figure:
    """Validation cost per example vs weight (log x), 95% band, w*, chosen weight and plateau."""
    v, s = np.asarray(info.value), 1.96 * np.asarray(info.se)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=info.weight + info.weight[::-1],
            y=(v + s).tolist() + (v - s)[::-1].tolist(),
            fill="toself",
            fillcolor="rgba(31,119,180,0.15)",
            line={"width": 0},
            hoverinfo="skip",
            name="95% interval",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=info.weight,
            y=info.value,
            mode="lines+markers",
            name="trial",
            text=_hover(info),
            hovertemplate="%{text}<extra></extra>",
        )
    )
    _mark_weights(fig, info)
    fig.update_layout(
        title="Validation cost per example vs pos_weight",
        xaxis_type="log",
        xaxis_range=_log_range(info),
        xaxis_title="pos_weight (log scale)",
        yaxis_title="cost per example",
        **_LAYOUT,
    )
    return fig


def plot_errors(info: CostInfo) -> go.Figure:
    """False negatives and false positives (validation) vs weight."""
    fig = go.Figure()
    for name, ys in (("false negatives", info.fn), ("false positives", info.fp)):
        fig.add_trace(
            go.Scatter(
                x=info.weight,
                y=ys,
                mode="lines+markers",
                name=name,
                text=_hover(info),
                hovertemplate="%{text}<extra></extra>",
            )
        )
    _mark_weights(fig, info)
    fig.update_layout(
        title="FN and FP counts vs pos_weight (validation)",
        xaxis_type="log",
        xaxis_range=_log_range(info),
        xaxis_title="pos_weight (log scale)",
        yaxis_title="count",
        **_LAYOUT,
    )
    return fig


def plot_precision_recall(info: CostInfo) -> go.Figure:
    """Precision and recall (validation) vs weight."""
    tp, fp, fn = (np.asarray(a, dtype=float) for a in (info.tp, info.fp, info.fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
    fig = go.Figure()
    for name, ys in (("precision", precision), ("recall", recall)):
        fig.add_trace(
            go.Scatter(
                x=info.weight,
                y=ys.tolist(),
                mode="lines+markers",
                name=name,
                text=_hover(info),
                hovertemplate="%{text}<br>%{y:.3f}<extra></extra>",
            )
        )
    _mark_weights(fig, info)
    fig.update_layout(
        title="Precision and recall vs pos_weight (validation)",
        xaxis_type="log",
        xaxis_range=_log_range(info),
        xaxis_title="pos_weight (log scale)",
        yaxis_title="",
        yaxis_range=[0, 1.05],
        **_LAYOUT,
    )
    return fig


class HistoryInfo(NamedTuple):
    """Values of complete trials in trial order and the best so far."""

    number: list[int]
    value: list[float]
    weight: list[float]
    best_so_far: list[float]


def history_info(trials: pd.DataFrame) -> HistoryInfo:
    done = trials[trials["state"] == "complete"].sort_values("number")
    values = done["value"].tolist()
    return HistoryInfo(
        done["number"].astype(int).tolist(),
        values,
        done["pos_weight"].tolist(),
        np.minimum.accumulate(values).tolist() if values else [],
    )


def plot_history(info: HistoryInfo) -> go.Figure:
    """Optimisation history: each trial's validation cost and the best so far."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=info.number,
            y=info.value,
            mode="markers",
            name="trial",
            customdata=info.weight,
            hovertemplate="trial %{x}<br>w = %{customdata:.4g}<br>cost %{y:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=info.number,
            y=info.best_so_far,
            mode="lines",
            name="best so far",
            line={"shape": "hv"},
        )
    )
    fig.update_layout(
        title="Optimisation history (validation cost)",
        xaxis_title="trial",
        yaxis_title="cost per example",
        **_LAYOUT,
    )
    return fig


class StatesInfo(NamedTuple):
    """Counts of trial states and the reasons of the trials that did not complete."""

    states: list[str]
    counts: list[int]
    problems: list[tuple[int, str, float, str]]  # (number, state, weight, reason)


def states_info(trials: pd.DataFrame) -> StatesInfo:
    order = ["complete", "pruned", "fail"]
    counts = trials["state"].value_counts()
    shown = {"complete": "complete", "pruned": "pruned", "fail": "failed"}
    bad = trials[trials["state"] != "complete"].sort_values("number")
    problems = [
        (int(r.number), str(r.state), float(r.pos_weight), str(r.fail_reason or ""))
        for r in bad.itertuples()
    ]
    return StatesInfo([shown[s] for s in order], [int(counts.get(s, 0)) for s in order], problems)


def plot_states(info: StatesInfo) -> go.Figure:
    """Trials by state."""
    fig = go.Figure(
        go.Bar(
            x=info.states,
            y=info.counts,
            marker_color=["#1f77b4", "#ff7f0e", "#d62728"],
            hovertemplate="%{x}: %{y}<extra></extra>",
        )
    )
    fig.update_layout(title="Trials by state", yaxis_title="trials", **{**_LAYOUT, "height": 300})
    return fig


# --- the chosen model on test ----------------------------------------------------------------


class CurveInfo(NamedTuple):
    """ROC and PR curves of the chosen model on test, with its operating point."""

    fpr: list[float]
    tpr: list[float]
    recall: list[float]
    precision: list[float]
    point_fpr: float
    point_tpr: float
    point_precision: float


def curve_info(curves: dict[str, Any]) -> CurveInfo | None:
    if not curves:
        return None
    op = curves["operating_point"]
    return CurveInfo(
        curves["roc"]["fpr"],
        curves["roc"]["tpr"],
        curves["pr"]["recall"],
        curves["pr"]["precision"],
        op["fpr"],
        op["tpr"],
        op["precision"],
    )


def plot_roc(info: CurveInfo) -> go.Figure:
    """ROC curve (test) with the operating point."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=info.fpr, y=info.tpr, mode="lines", name="ROC (test)"))
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#aaa"},
            name="chance",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[info.point_fpr],
            y=[info.point_tpr],
            mode="markers",
            marker={"size": 12, "color": "#d62728"},
            name="operating point",
        )
    )
    fig.update_layout(
        title="ROC of the chosen model (test)",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        **_LAYOUT,
    )
    return fig


def plot_pr(info: CurveInfo) -> go.Figure:
    """Precision-recall curve (test) with the operating point."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=info.recall, y=info.precision, mode="lines", name="PR (test)"))
    fig.add_trace(
        go.Scatter(
            x=[info.point_tpr],
            y=[info.point_precision],
            mode="markers",
            marker={"size": 12, "color": "#d62728"},
            name="operating point",
        )
    )
    fig.update_layout(
        title="Precision-recall of the chosen model (test)",
        xaxis_title="recall",
        yaxis_title="precision",
        yaxis_range=[0, 1.05],
        **_LAYOUT,
    )
    return fig


class ConfusionInfo(NamedTuple):
    """Confusion matrix [[TN, FP], [FN, TP]] on test."""

    matrix: list[list[int]]
    labels: list[str]


def confusion_info(
    test: dict[str, Any] | None, positive_label: str, negative_label: str
) -> ConfusionInfo | None:
    if test is None:
        return None
    return ConfusionInfo(
        [[test["tn"], test["fp"]], [test["fn"], test["tp"]]],
        [f"negative ({escape(str(negative_label))})", f"positive ({escape(str(positive_label))})"],
    )


def plot_confusion(info: ConfusionInfo) -> go.Figure:
    """Confusion matrix of the chosen model on test."""
    names = [["TN", "FP"], ["FN", "TP"]]
    text = [[f"{names[i][j]}<br>{info.matrix[i][j]}" for j in range(2)] for i in range(2)]
    fig = go.Figure(
        go.Heatmap(
            z=info.matrix,
            x=[f"predicted {v}" for v in info.labels],
            y=[f"actual {v}" for v in info.labels],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Confusion matrix of the chosen model (test)",
        yaxis_autorange="reversed",
        **{**_LAYOUT, "height": 340},
    )
    return fig

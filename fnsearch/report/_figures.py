"""The report's figures: for each, a pure info extraction (a small record) and a pure plotting function.

Per-trial figures show validation (or cross-validation) values only; test values appear only for the
chosen policy and the baselines (the baselines bars, ROC, PR, confusion matrix). Records are
NamedTuples of plain lists, so tests compare them exactly; the plotting functions only arrange them.

Size: arrays reach the page as NumPy arrays, which plotly stores as base64 typed arrays (4-8 bytes a
value instead of ~20 of JSON text), and hover labels are templates over those numbers rather than
one string per point. Per-trial figures grow with the number of trials, never with the rows; the
curves are thinned to a few hundred points by the result.
"""

from __future__ import annotations

from html import escape
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "BaselinesInfo",
    "ConfusionInfo",
    "CostInfo",
    "CurveInfo",
    "HistoryInfo",
    "StatesInfo",
    "baselines_info",
    "confusion_info",
    "cost_info",
    "curve_info",
    "history_info",
    "plot_baselines",
    "plot_confusion",
    "plot_cost",
    "plot_errors",
    "plot_history",
    "plot_pr",
    "plot_precision_recall",
    "plot_roc",
    "plot_states",
    "sample_trials",
    "shown_state",
    "states_info",
]

CHOSEN, THEORY, PLATEAU, MUTED = "#d62728", "#555555", "#2ca02c", "#9aa5b1"
TEMPLATE = "plotly_white"
_LAYOUT = {
    "template": TEMPLATE,
    "height": 400,
    "margin": {"l": 64, "r": 24, "t": 56, "b": 40},
    "legend": {"orientation": "h", "y": -0.22, "x": 0, "font": {"size": 11}},
    "title": {"font": {"size": 15}, "x": 0.02},
    "hoverlabel": {"align": "left"},
}
_LOG_X = {"type": "log", "title": {"text": "pos_weight (log scale)"}, "hoverformat": ".4g"}


def _layout(title: str, **more: Any) -> dict[str, Any]:
    return {**_LAYOUT, "title": {**_LAYOUT["title"], "text": title}, **more}


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


# One hover for every per-trial point: trial number, weight, validation cost (± se), FN and FP.
# Against weight, x is the weight; in the history, x is the trial number and the weight rides along.
_TRIAL_HOVER = (
    "<b>trial %{customdata[0]}</b><br>pos_weight %{x:.4g}<br>"
    "validation cost %{customdata[1]:.4f} ± %{customdata[2]:.4f}<br>"
    "FN %{customdata[3]}, FP %{customdata[4]}"
)
_HISTORY_HOVER = (
    "<b>trial %{customdata[0]}</b><br>pos_weight %{customdata[5]:.4g}<br>"
    "validation cost %{customdata[1]:.4f} ± %{customdata[2]:.4f}<br>"
    "FN %{customdata[3]}, FP %{customdata[4]}"
)


def _hover_data(number, value, se, fn, fp, *more) -> np.ndarray:
    # float32 is exact for counts and trial numbers below 2**24 and ample for a 4-digit hover.
    return np.column_stack([number, value, se, fn, fp, *more]).astype(np.float32)


def _trial_data(info: CostInfo) -> np.ndarray:
    return _hover_data(info.number, info.value, info.se, info.fn, info.fp)


MAX_TRIALS_SHOWN = 2000


def sample_trials(
    trials: pd.DataFrame, best: dict[str, Any] | None, most: int = MAX_TRIALS_SHOWN
) -> pd.DataFrame:
    """At most ``most`` trials for the figures, so the page stays small for any study size.

    Kept always: the chosen trial, every trial that improved the best value so far (the history's
    steps stay exact) and the trials that did not complete (up to a quarter of ``most``, they carry
    the reasons); the rest of the complete trials are taken evenly in weight order, so the shape of
    every curve against the weight survives. The tables list every trial.
    """
    if len(trials) <= most:
        return trials
    ordered = trials.sort_values("number")
    done = ordered[ordered["state"] == "complete"]
    records = done[done["value"] < done["value"].cummin().shift(fill_value=np.inf)]
    keep = set(records["number"])
    if best is not None and best.get("trial") is not None:
        keep.add(int(best["trial"]))
    keep.update(ordered.loc[ordered["state"] != "complete", "number"].head(most // 4))
    rest = done[~done["number"].isin(keep)].sort_values(["pos_weight", "number"])
    room = max(0, most - len(keep))
    if room and len(rest):
        picks = np.unique(np.linspace(0, len(rest) - 1, min(room, len(rest))).round().astype(int))
        keep.update(rest["number"].iloc[picks])
    return ordered[ordered["number"].isin(keep)]


def _mark_weights(fig: go.Figure, info: CostInfo) -> None:
    # The marks are legend entries, not text on the plot: w* and the chosen weight are often close
    # (German credit: 5 and 5.5), and labels there would overlap each other and the data.
    if info.plateau is not None:
        lo, hi = info.plateau
        fig.add_vrect(
            x0=lo,
            x1=hi,
            fillcolor=PLATEAU,
            opacity=0.12,
            line_width=0,
            layer="below",
            showlegend=True,
            name=f"plateau {lo:.3g}-{hi:.3g} (within 1 se of best)",
        )
    fig.add_vline(
        x=info.theory,
        line={"dash": "dot", "color": THEORY, "width": 2},
        showlegend=True,
        name=f"theory w* = {info.theory:.3g}",
    )
    if info.chosen is not None:
        fig.add_vline(
            x=info.chosen,
            line={"color": CHOSEN, "width": 2},
            showlegend=True,
            name=f"chosen w = {info.chosen:.3g}",
        )


def _log_range(info: CostInfo) -> list[float]:
    # Pinned to the trials and marks, with a margin, in log10 units (what a log axis range takes).
    xs = [*info.weight, info.theory] + ([info.chosen] if info.chosen is not None else [])
    return [float(np.log10(min(xs))) - 0.1, float(np.log10(max(xs))) + 0.1]


def _per_trial_layout(title: str, info: CostInfo, y_title: str, **more: Any) -> dict[str, Any]:
    return _layout(
        title,
        xaxis={**_LOG_X, "range": _log_range(info)},
        yaxis={"title": {"text": y_title}},
        **more,
    )


def plot_cost(info: CostInfo) -> go.Figure:
    """Validation cost per example vs weight (log x), 95% band, w*, chosen weight and plateau."""
    w = np.asarray(info.weight)
    v, s = np.asarray(info.value), 1.96 * np.asarray(info.se)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([w, w[::-1]]),
            y=np.concatenate([v + s, (v - s)[::-1]]).astype(np.float32),
            fill="toself",
            fillcolor="rgba(31,119,180,0.15)",
            line={"width": 0},
            hoverinfo="skip",
            name="95% interval",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=w,
            y=v,
            mode="lines+markers",
            name="trial (validation cost)",
            line={"color": "#1f77b4"},
            marker={"size": 6},
            customdata=_trial_data(info),
            hovertemplate=_TRIAL_HOVER + "<extra></extra>",
        )
    )
    _mark_weights(fig, info)
    fig.update_layout(
        **_per_trial_layout("Validation cost per example vs pos_weight", info, "cost per example")
    )
    return fig


def _paired(fig: go.Figure, info: CostInfo, title: str, traces, y_title: str, **more) -> None:
    # Two series over the same trials: the hover is unified by weight, so the first series
    # carries the trial's data once and the second adds only its own value (half the bytes).
    data = _trial_data(info)
    for k, (name, ys, color, fmt) in enumerate(traces):
        fig.add_trace(
            go.Scatter(
                x=np.asarray(info.weight),
                y=ys,
                mode="lines+markers",
                name=name,
                line={"color": color},
                marker={"size": 5},
                customdata=data if k == 0 else None,
                hovertemplate=(_TRIAL_HOVER + "<br>" if k == 0 else "")
                + f"{name} %{{y{fmt}}}<extra></extra>",
            )
        )
    _mark_weights(fig, info)
    fig.update_layout(**_per_trial_layout(title, info, y_title, hovermode="x unified", **more))


def plot_errors(info: CostInfo) -> go.Figure:
    """False negatives and false positives (validation) vs weight."""
    fig = go.Figure()
    _paired(
        fig,
        info,
        "FN and FP counts vs pos_weight (validation)",
        [
            ("false negatives", np.asarray(info.fn, dtype=np.int32), "#9467bd", ""),
            ("false positives", np.asarray(info.fp, dtype=np.int32), "#ff7f0e", ""),
        ],
        "count",
    )
    return fig


def plot_precision_recall(info: CostInfo) -> go.Figure:
    """Precision and recall (validation) vs weight."""
    tp, fp, fn = (np.asarray(a, dtype=float) for a in (info.tp, info.fp, info.fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
    fig = go.Figure()
    _paired(
        fig,
        info,
        "Precision and recall vs pos_weight (validation)",
        [
            ("precision", precision.astype(np.float32), "#17becf", ":.3f"),
            ("recall", recall.astype(np.float32), "#8c564b", ":.3f"),
        ],
        "",
        yaxis_range=[0, 1.05],
    )
    return fig


class HistoryInfo(NamedTuple):
    """Complete trials in trial order (with their counts) and the best value so far."""

    number: list[int]
    value: list[float]
    weight: list[float]
    se: list[float]
    fn: list[int]
    fp: list[int]
    best_so_far: list[float]


def history_info(trials: pd.DataFrame) -> HistoryInfo:
    done = trials[trials["state"] == "complete"].sort_values("number")
    values = done["value"].tolist()
    return HistoryInfo(
        done["number"].astype(int).tolist(),
        values,
        done["pos_weight"].tolist(),
        done["value_se"].fillna(0.0).tolist(),
        done["fn"].astype(int).tolist(),
        done["fp"].astype(int).tolist(),
        np.minimum.accumulate(values).tolist() if values else [],
    )


def plot_history(info: HistoryInfo) -> go.Figure:
    """Optimisation history: each trial's validation cost and the best so far."""
    data = _hover_data(info.number, info.value, info.se, info.fn, info.fp, info.weight)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.asarray(info.number, dtype=np.int32),
            y=np.asarray(info.value),
            mode="markers",
            name="trial (validation cost)",
            marker={"size": 6, "color": "#1f77b4"},
            customdata=data,
            hovertemplate=_HISTORY_HOVER + "<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=np.asarray(info.number, dtype=np.int32),
            y=np.asarray(info.best_so_far),
            mode="lines",
            name="best so far",
            line={"shape": "hv", "color": CHOSEN},
            hovertemplate="best so far after trial %{x}: %{y:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            "Optimisation history (validation cost)",
            xaxis_title="trial",
            yaxis_title="cost per example",
        )
    )
    return fig


class StatesInfo(NamedTuple):
    """Counts of trial states, every trial's state and weight, and the reasons of the rest."""

    states: list[str]
    counts: list[int]
    problems: list[tuple[int, str, float, str]]  # (number, state, weight, reason)
    number: list[int]
    state: list[str]
    weight: list[float]
    reason: list[str]


_SHOWN = {"complete": "complete", "pruned": "pruned", "fail": "failed"}


def shown_state(state: str) -> str:
    """A trials.csv state as the report names it."""
    return _SHOWN.get(state, state)


_STATE_COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "failed": CHOSEN}


def states_info(trials: pd.DataFrame) -> StatesInfo:
    order = ["complete", "pruned", "fail"]
    counts = trials["state"].value_counts()
    ordered = trials.sort_values("number")
    bad = ordered[ordered["state"] != "complete"]
    problems = [
        (int(r.number), str(r.state), float(r.pos_weight), str(r.fail_reason or ""))
        for r in bad.itertuples()
    ]
    return StatesInfo(
        [_SHOWN[s] for s in order],
        [int(counts.get(s, 0)) for s in order],
        problems,
        ordered["number"].astype(int).tolist(),
        [_SHOWN.get(s, s) for s in ordered["state"]],
        ordered["pos_weight"].astype(float).tolist(),
        [str(r or "") for r in ordered["fail_reason"]],
    )


def plot_states(info: StatesInfo) -> go.Figure:
    """Every trial's weight by trial number, coloured by state; the hover gives the reason."""
    fig = go.Figure()
    state = np.asarray(info.state, dtype=object)
    for name, count in zip(info.states, info.counts, strict=True):
        keep = state == name
        reasons = [escape(r) or "-" for r, k in zip(info.reason, keep, strict=True) if k]
        fig.add_trace(
            go.Scatter(
                x=np.asarray(info.number, dtype=np.int32)[keep],
                y=np.asarray(info.weight)[keep],
                mode="markers",
                name=f"{name} ({count})",
                marker={
                    "size": 7,
                    "color": _STATE_COLORS.get(name, MUTED),
                    "symbol": "circle" if name == "complete" else "x",
                },
                # Reasons are text, and usually one or two distinct ones: only failed and pruned
                # trials carry them, so a large study of complete trials adds nothing here.
                text=None if name == "complete" else reasons,
                hovertemplate=(
                    f"<b>trial %{{x}}</b>: {name}<br>pos_weight %{{y:.4g}}"
                    + ("" if name == "complete" else "<br>%{text}")
                    + "<extra></extra>"
                ),
                visible=True if count else "legendonly",
            )
        )
    summary = ", ".join(f"{c} {s}" for s, c in zip(info.states, info.counts, strict=True))
    fig.update_layout(
        **_layout(
            f"Trial states: {summary}",
            showlegend=True,  # plotly hides a legend of one trace; the counts are in it
            xaxis_title="trial",
            yaxis={"type": "log", "title": {"text": "pos_weight (log scale)"}},
        )
    )
    return fig


# --- the chosen policy and the baselines on test ---------------------------------------------


class BaselinesInfo(NamedTuple):
    """Test cost per example of the chosen policy and each baseline, with 95% intervals."""

    names: list[str]
    cost: list[float]
    low: list[float]
    high: list[float]
    savings: list[float]
    counts: list[tuple[int, int, int, int]]  # (tp, fp, tn, fn)
    chosen: list[bool]


def baselines_info(
    test: dict[str, Any] | None, baselines: dict[str, dict[str, Any]], words: dict[str, str]
) -> BaselinesInfo:
    entries = ([("chosen", test)] if test else []) + list(baselines.items())
    return BaselinesInfo(
        [words.get(k, k) for k, _ in entries],
        [float(s["cost_per_example"]) for _, s in entries],
        [float(s["ci95"][0]) for _, s in entries],
        [float(s["ci95"][1]) for _, s in entries],
        [float(s["savings"]) for _, s in entries],
        [(int(s["tp"]), int(s["fp"]), int(s["tn"]), int(s["fn"])) for _, s in entries],
        [k == "chosen" for k, _ in entries],
    )


def plot_baselines(info: BaselinesInfo) -> go.Figure:
    """Horizontal bars: test cost per example of each policy, with its 95% interval."""
    cost = np.asarray(info.cost)
    data = np.column_stack(
        [info.low, info.high, info.savings, np.asarray(info.counts).reshape(-1, 4)]
    )
    fig = go.Figure(
        go.Bar(
            y=info.names,
            x=cost,
            orientation="h",
            marker_color=[CHOSEN if c else MUTED for c in info.chosen],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": np.asarray(info.high) - cost,
                "arrayminus": cost - np.asarray(info.low),
                "color": "#333",
                "thickness": 1.2,
            },
            text=[f"{c:.3f}" for c in info.cost],
            textposition="auto",  # inside a bar when it fits, beside a short one
            insidetextanchor="start",
            customdata=data,
            hovertemplate=(
                "<b>%{y}</b><br>test cost %{x:.4f} per example<br>"
                "95% interval %{customdata[0]:.4f} to %{customdata[1]:.4f}<br>"
                "savings %{customdata[2]:.1%}<br>TP %{customdata[3]}, FP %{customdata[4]}, "
                "TN %{customdata[5]}, FN %{customdata[6]}<extra></extra>"
            ),
            showlegend=False,
        )
    )
    fig.update_layout(
        **_layout(
            "Test cost per example: chosen policy vs baselines (95% intervals)"
            if any(info.chosen)
            else "Test cost per example of the baselines (95% intervals)",
            xaxis_title="cost per example on the test rows (lower is better)",
            yaxis={"autorange": "reversed", "automargin": True},
        )
    )
    return fig


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


_POINT = {"size": 13, "color": CHOSEN, "line": {"color": "white", "width": 2}}


def plot_roc(info: CurveInfo) -> go.Figure:
    """ROC curve (test) with the operating point."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.asarray(info.fpr, dtype=np.float32),
            y=np.asarray(info.tpr, dtype=np.float32),
            mode="lines",
            name="ROC (test)",
            line={"color": "#1f77b4"},
            hovertemplate="FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>",
        )
    )
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
            marker=_POINT,
            name="chosen policy's operating point",
            hovertemplate="operating point<br>FPR %{x:.3f}, TPR (recall) %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            "ROC of the chosen model (test)",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
        )
    )
    return fig


def plot_pr(info: CurveInfo) -> go.Figure:
    """Precision-recall curve (test) with the operating point."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.asarray(info.recall, dtype=np.float32),
            y=np.asarray(info.precision, dtype=np.float32),
            mode="lines",
            name="PR (test)",
            line={"color": "#1f77b4"},
            hovertemplate="recall %{x:.3f}, precision %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[info.point_tpr],
            y=[info.point_precision],
            mode="markers",
            marker=_POINT,
            name="chosen policy's operating point",
            hovertemplate="operating point<br>recall %{x:.3f}, precision %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            "Precision-recall of the chosen model (test)",
            xaxis_title="recall",
            yaxis_title="precision",
            yaxis_range=[0, 1.05],
        )
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
    """Confusion matrix of the chosen model on test, each cell with its share of the row."""
    names = [["TN", "FP"], ["FN", "TP"]]
    m = np.asarray(info.matrix, dtype=float)
    share = m / np.maximum(1.0, m.sum(axis=1, keepdims=True))
    text = [
        [
            f"<b>{names[i][j]} {info.matrix[i][j]}</b><br>{share[i, j]:.0%} of actual"
            for j in range(2)
        ]
        for i in range(2)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=[f"predicted {v}" for v in info.labels],
            y=[f"actual {v}" for v in info.labels],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 14},
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{y}, %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            "Confusion matrix of the chosen model (test)",
            yaxis={"autorange": "reversed", "automargin": True},
            xaxis={"automargin": True, "side": "bottom"},
        )
    )
    return fig

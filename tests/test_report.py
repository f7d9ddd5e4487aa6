"""Report figures (info extraction exactly, plots by title) and the self-contained page."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from fnsearch import tune
from fnsearch.report import _figures as F
from fnsearch.report import figures, render_report

from .conftest import FAST


def table():
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "state": ["complete", "complete", "fail", "complete"],
            "pos_weight": [5.0, 1.0, 1e9, 2.0],
            "value": [0.5, 0.8, float("nan"), 0.6],
            "value_se": [0.05, 0.06, float("nan"), 0.05],
            "tp": pd.array([50, 30, None, 45], dtype="Int64"),
            "fp": pd.array([60, 20, None, 40], dtype="Int64"),
            "tn": pd.array([80, 120, None, 100], dtype="Int64"),
            "fn": pd.array([10, 30, None, 15], dtype="Int64"),
            "fail_reason": ["", "", "training loss became non-finite at epoch 2", ""],
        }
    )


def test_cost_info_sorts_complete_trials_by_weight():
    """Check the cost record: complete trials only, sorted by weight, with marks."""
    best = {"pos_weight": 5.0, "plateau": [2.0, 5.0]}
    info = F.cost_info(table(), best, theory=5.0)
    assert info.weight == [1.0, 2.0, 5.0]
    assert info.number == [1, 3, 0]
    assert info.value == [0.8, 0.6, 0.5]
    assert info.fn == [30, 15, 10] and info.fp == [20, 40, 60]
    assert (info.chosen, info.theory, info.plateau) == (5.0, 5.0, (2.0, 5.0))


def test_history_and_states_info():
    """Check the history record (best so far) and the failed-trial reasons."""
    h = F.history_info(table())
    assert h.number == [0, 1, 3] and h.best_so_far == [0.5, 0.5, 0.5]
    s = F.states_info(table())
    assert s.counts == [3, 0, 1]
    assert s.problems == [(2, "fail", 1e9, "training loss became non-finite at epoch 2")]


def test_plots_have_titles_and_traces():
    """Check each per-trial figure's title and trace names."""
    info = F.cost_info(table(), {"pos_weight": 5.0, "plateau": [2.0, 5.0]}, 5.0)
    fig = F.plot_cost(info)
    assert fig.layout.title.text.startswith("Validation cost per example")
    assert fig.layout.xaxis.type == "log"
    assert [t.name for t in fig.data] == ["95% interval", "trial"]
    assert [t.name for t in F.plot_errors(info).data] == ["false negatives", "false positives"]
    assert [t.name for t in F.plot_precision_recall(info).data] == ["precision", "recall"]


@pytest.fixture(scope="module")
def result():
    spec = {
        "study": {"name": "<script>alert('study')</script>"},
        "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
        "cost": {"fn": 5, "fp": 1},
    }
    return tune(spec, overrides=FAST)


def test_report_is_self_contained_and_has_every_figure(result):
    """Check plotly.js is inlined exactly once, nothing is fetched, and every figure is present."""
    html = render_report(result)
    assert html.count("Plotly.newPlot(") == len(figures(result))
    ids = [i for i, _ in figures(result)]
    assert ids == [
        "cost",
        "errors",
        "precision-recall",
        "roc",
        "pr",
        "confusion",
        "history",
        "states",
    ]
    bundle = get_plotlyjs()
    assert html.count(bundle[:300]) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    # the only URL is plotly.js's unused default for geo maps, inside the bundle itself
    outside = html.replace(bundle, "")
    assert not re.search(r"https?://", outside)
    assert f"{result.best['pos_weight']:.4g}" in html


def test_user_text_is_escaped(result):
    """Check that a study name holding <script> is shown as text, never as markup."""
    html = render_report(result)
    assert "<script>alert('study')</script>" not in html
    assert "&lt;script&gt;alert(" in html

"""Report figures (info extraction exactly, plots by title) and the self-contained page."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from fnsearch import tune
from fnsearch.report import _figures as F
from fnsearch.report import figures, headline, render_report
from fnsearch.result import _curves
from fnsearch.words import policy_words

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
    """Check the history record (best so far, counts) and the failed-trial reasons."""
    h = F.history_info(table())
    assert h.number == [0, 1, 3] and h.best_so_far == [0.5, 0.5, 0.5]
    assert h.fn == [10, 30, 15] and h.fp == [60, 20, 40] and h.weight == [5.0, 1.0, 2.0]
    s = F.states_info(table())
    assert s.counts == [3, 0, 1]
    assert s.problems == [(2, "fail", 1e9, "training loss became non-finite at epoch 2")]
    assert s.number == [0, 1, 2, 3] and s.state == ["complete", "complete", "failed", "complete"]
    assert s.reason[2] == "training loss became non-finite at epoch 2"


def test_plots_have_titles_and_traces():
    """Check each per-trial figure's title and trace names, and the marks in the legend."""
    info = F.cost_info(table(), {"pos_weight": 5.0, "plateau": [2.0, 5.0]}, 5.0)
    fig = F.plot_cost(info)
    assert fig.layout.title.text.startswith("Validation cost per example")
    assert fig.layout.xaxis.type == "log"
    assert [t.name for t in fig.data] == ["95% interval", "trial (validation cost)"]
    assert [s.name for s in fig.layout.shapes] == [
        "plateau 2-5 (within 1 se of best)",
        "theory w* = 5",
        "chosen w = 5",
    ]
    assert [t.name for t in F.plot_errors(info).data] == ["false negatives", "false positives"]
    assert [t.name for t in F.plot_precision_recall(info).data] == ["precision", "recall"]
    states = F.plot_states(F.states_info(table()))
    assert [t.name for t in states.data] == ["complete (3)", "pruned (0)", "failed (1)"]
    assert states.layout.title.text == "Trial states: 3 complete, 0 pruned, 1 failed"
    assert list(states.data[2].text) == ["training loss became non-finite at epoch 2"]


def test_baselines_info_puts_the_chosen_policy_first():
    """Check the baselines record: the chosen policy first, then the baselines in order."""

    def entry(cost):
        return {
            "cost_per_example": cost,
            "ci95": [cost - 0.1, cost + 0.1],
            "savings": 0.2,
            "tp": 1,
            "fp": 2,
            "tn": 3,
            "fn": 4,
        }

    info = F.baselines_info(
        entry(0.5), {"unweighted": entry(0.9), "all_positive": entry(0.7)}, {"chosen": "mine"}
    )
    assert info.names == ["mine", "unweighted", "all_positive"]
    assert info.cost == [0.5, 0.9, 0.7] and info.chosen == [True, False, False]
    assert info.low == pytest.approx([0.4, 0.8, 0.6]) and info.counts[0] == (1, 2, 3, 4)
    assert F.baselines_info(None, {"unweighted": entry(0.9)}, {}).chosen == [False]


def big_table(n: int, failed_every: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    state = np.where(np.arange(n) % failed_every == 7, "fail", "complete")
    ok = state == "complete"
    counts = {
        c: pd.array(rng.integers(0, 10**5, n), dtype="Int64") for c in ("tp", "fp", "tn", "fn")
    }
    return pd.DataFrame(
        {
            "number": np.arange(n),
            "state": state,
            "pos_weight": np.exp(rng.uniform(np.log(0.1), np.log(50.0), n)),
            "value": np.where(ok, rng.random(n), np.nan),
            "value_se": np.where(ok, 0.01, np.nan),
            **counts,
            "fail_reason": np.where(ok, "", "training diverged at epoch 3"),
        }
    )


def test_sample_trials_keeps_what_matters_and_bounds_the_rest():
    """Check that a large study's figures keep the chosen trial, every improvement and the failed
    trials, take the rest evenly by weight, and stay within the bound."""
    trials = big_table(5000)
    done = trials[trials["state"] == "complete"]
    best_row = done.sort_values("value").iloc[0]
    best = {"trial": int(best_row["number"])}
    shown = F.sample_trials(trials, best, most=1000)
    assert len(shown) <= 1000
    kept = set(shown["number"])
    assert best["trial"] in kept
    records = done[done["value"] < done["value"].cummin().shift(fill_value=np.inf)]
    assert set(records["number"]) <= kept
    failed = trials[trials["state"] == "fail"]["number"]
    assert set(failed.head(250)) <= kept
    # the evenly taken rest spans the weight range
    assert shown["pos_weight"].min() == pytest.approx(done["pos_weight"].min())
    assert shown["pos_weight"].max() == pytest.approx(done["pos_weight"].max())
    # history's best-so-far steps are exactly those of the whole study
    assert F.history_info(shown).best_so_far[-1] == done["value"].min()
    small = table()
    assert F.sample_trials(small, None, most=10) is small


@pytest.fixture(scope="module")
def result():
    spec = {
        "study": {"name": "<script>alert('study')</script>"},
        "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
        "cost": {"fn": 5, "fp": 1},
    }
    return tune(spec, overrides=FAST)


def test_report_is_self_contained_and_has_every_figure(result):
    """Check plotly.js and the template are inlined exactly once, nothing is fetched, and every
    figure is present."""
    html = render_report(result)
    assert html.count("fnsearchDraw(") == len(figures(result)) + 1  # + its definition
    ids = [i for i, _ in figures(result)]
    assert ids == [
        "baselines",
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
    assert outside.count('"histogram2dcontour":[') == 1  # the figures' template, once
    assert not re.search(r"https?://", outside)
    assert f"{result.best['pos_weight']:.4g}" in html


def test_user_text_is_escaped(result):
    """Check that a study name holding <script> is shown as text, never as markup."""
    html = render_report(result)
    assert "<script>alert('study')</script>" not in html
    assert "&lt;script&gt;alert(" in html


def test_headline_reads_any_policy_and_shows_a_tuned_threshold(result):
    """Check the top sentence: policy in words, the threshold only when it is not 0.5, the test
    cost with its interval, and the comparison with each baseline."""
    text = re.sub(r"<[^>]+>", "", headline(result))
    best, test = result.best, result.test
    assert text.startswith(
        f"Train with pos_weight = {best['pos_weight']:.4g} ({policy_words(best['policy'])}"
    )
    assert f"{best['pos_weight']:.4g} at threshold" not in text  # 0.5 goes without saying
    lo, hi = test["ci95"]
    assert (
        f"costs {test['cost_per_example']:.4f} per example (95% interval {lo:.4f} to {hi:.4f})"
        in text
    )
    for key in ("unweighted", "theory_weight", "tuned_threshold"):
        assert f"({result.baselines[key]['cost_per_example']:.4f})" in text

    tuned = {**best, "policy": "searched_tuned_threshold", "threshold": 0.3125}
    text = re.sub(r"<[^>]+>", "", headline(dataclasses.replace(result, best=tuned)))
    assert "at threshold 0.312 (the searched weight with a tuned threshold" in text
    # and the paired difference with the strongest other baseline
    assert "paired difference is" in text
    later = {**best, "policy": "some_new_policy", "trial": None}
    text = re.sub(r"<[^>]+>", "", headline(dataclasses.replace(result, best=later)))
    assert "(some new policy)" in text


def test_headline_says_lower_and_higher():
    """Check the comparison words against baselines that are cheaper and dearer."""

    def entry(cost):
        return {
            "cost_per_example": cost,
            "ci95": [cost, cost],
            "savings": 0.1,
            "tp": 1,
            "fp": 1,
            "tn": 1,
            "fn": 1,
        }

    fake = dataclasses.replace(
        _shell(),
        best={"policy": "searched", "pos_weight": 4.0, "threshold": 0.5, "trial": 3},
        test=entry(0.5),
        baselines={
            "unweighted": entry(0.9),
            "theory_weight": entry(0.5),
            "tuned_threshold": entry(0.4),
        },
    )
    text = re.sub(r"<[^>]+>", "", headline(fake))
    assert "lower than unweighted training (0.9000)" in text
    assert "the same as the theory weight w* = 5 (0.5000)" in text
    assert "but higher than threshold tuning of the unweighted model (0.4000)" in text


_SHELL = {}


def _shell():
    if not _SHELL:
        _SHELL["r"] = tune(
            {
                "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
                "cost": {"fn": 5, "fp": 1},
            },
            overrides={**FAST, "study.n_trials": 2},
        )
    return _SHELL["r"]


def test_failed_trials_are_grouped_by_reason(result):
    """Check the table of trials that did not complete: one row per state and reason."""
    trials = big_table(300, failed_every=10)
    html = render_report(dataclasses.replace(result, trials_table=trials))
    table_html = html[html.index('<table id="problems">') :]
    table_html = table_html[: table_html.index("</table>")]
    assert table_html.count("<tr>") == 2  # header + one reason
    assert "<td>failed</td><td>30</td><td>7, 17, 27" in table_html and "and 18 more" in table_html


def test_report_stays_small_at_a_million_rows_and_many_trials(result):
    """Check the page stays under 6 MB with plotly.js inlined, for curves of a 1M-row test set
    and a study of 5000 trials."""
    rng = np.random.default_rng(0)
    n = 1_000_000
    y = rng.random(n) < 0.3
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.5 * y)))
    curves = _curves(y, scores, 0.5)
    big = dataclasses.replace(result, trials_table=big_table(5000), curves=curves)
    html = render_report(big)
    assert len(html.encode()) < 6_000_000
    assert html.count(get_plotlyjs()[:300]) == 1
    assert 'id="sampled"' in html and "2000 of the 5000 trials" in html
    assert 'id="sampled"' not in render_report(result)

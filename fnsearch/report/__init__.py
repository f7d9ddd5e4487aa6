"""The HTML report: one self-contained page, plotly.js inlined once, nothing loaded from a network.

Every string that comes from the user (column names, labels, study name, reasons) is escaped: the
page shows it as text and never runs it.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from ..result import TuneResult
from ..words import baseline_words, policy_words
from . import _figures as F

__all__ = ["figures", "headline", "render_report"]

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;
  background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:24px}
h1{font-size:1.45rem;margin:0 0 12px;font-weight:650} h2{font-size:1.12rem;margin:30px 0 10px}
.lead{font-size:1.08rem;line-height:1.55;background:#fff;border-left:5px solid #d62728;
  padding:14px 18px;margin:0 0 14px;border-radius:0 6px 6px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:12px;margin:0 0 8px}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:12px 16px}
.card .k{font-size:.8rem;color:#57606a;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:1.75rem;font-weight:650;margin:2px 0;font-variant-numeric:tabular-nums}
.card .s{font-size:.85rem;color:#57606a} .card.hi{border-top:4px solid #d62728}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:4px 4px 10px}
.plot{min-height:400px} figcaption{font-size:.86rem;color:#57606a;padding:0 14px;line-height:1.4}
table{border-collapse:collapse;background:#fff;font-size:.92rem;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e0e3e7;padding:5px 10px;text-align:right} th{background:#f0f2f4}
td:first-child,th:first-child{text-align:left} .chosen{font-weight:650;background:#fff1f1}
table.facts td:last-child,#problems td:last-child,#problems th:last-child{text-align:left}
.muted{color:#57606a;font-size:.9rem} pre{background:#fff;border:1px solid #e3e6ea;padding:10px;overflow:auto}
.warn{background:#fff3cd;border-left:5px solid #e0a800;padding:12px 16px;font-size:1.05rem}
details summary{cursor:pointer;font-weight:600;margin:24px 0 8px}
"""

# One line under each figure: how to read it.
_CAPTIONS = {
    "baselines": "Test rows, scored once. Bars are cost per example (lower is better), whiskers the "
    "95% bootstrap interval; the chosen policy, when there is one, is red.",
    "cost": "Each dot is a trial, scored on validation (or out-of-fold) rows; the blue band is "
    "±1.96 standard errors. Weights in the green plateau are within one standard error of the best.",
    "errors": "Raising pos_weight trades missed positives (FN) for false alarms (FP); the cost "
    "figure weighs them with your costs.",
    "precision-recall": "Validation precision and recall of each trial's model at threshold 0.5.",
    "roc": "The chosen model on the test rows; the red dot is where its threshold puts it.",
    "pr": "The chosen model on the test rows; the red dot is its operating point.",
    "confusion": "The chosen policy's decisions on the test rows; shares are of each actual class.",
    "history": "Validation cost of each trial in the order the sampler asked for them.",
    "states": "Every trial; hover a failed or pruned one for the reason (also listed below).",
}


def figures(result: TuneResult) -> list[tuple[str, go.Figure]]:
    """The report's figures, in page order, as (id, figure)."""
    trials = result.trials_table
    theory = result.cost["theory_weight"]
    out: list[tuple[str, go.Figure]] = [
        (
            "baselines",
            F.plot_baselines(
                F.baselines_info(
                    result.test, result.baselines, {k: baseline_words(k) for k in _entries(result)}
                )
            ),
        )
    ]
    shown = F.sample_trials(trials, result.best)
    cost = F.cost_info(shown, result.best, theory)
    if cost.weight:
        out += [
            ("cost", F.plot_cost(cost)),
            ("errors", F.plot_errors(cost)),
            ("precision-recall", F.plot_precision_recall(cost)),
        ]
    curves = F.curve_info(result.curves)
    if curves is not None:
        out += [("roc", F.plot_roc(curves)), ("pr", F.plot_pr(curves))]
    confusion = F.confusion_info(
        result.test, result.data["positive_label"], result.data.get("negative_label", "")
    )
    if confusion is not None:
        out.append(("confusion", F.plot_confusion(confusion)))
    history = F.history_info(shown)
    if history.number:
        out.append(("history", F.plot_history(history)))
    everyone = F.states_info(trials)  # counts of every trial, points of those shown
    states = F.states_info(shown)._replace(counts=everyone.counts, problems=everyone.problems)
    out.append(("states", F.plot_states(states)))
    return out


def _sampled_note(result: TuneResult) -> str:
    n = len(result.trials_table)
    shown = len(F.sample_trials(result.trials_table, result.best))
    if shown == n:
        return ""
    return (
        f'<p class="muted" id="sampled">The per-trial figures show {shown} of the {n} trials: '
        "the chosen one, every one that improved on the best so far and those that did not "
        "complete, then the rest evenly spaced by weight. The tables list every trial.</p>"
    )


def _entries(result: TuneResult) -> list[str]:
    return (["chosen"] if result.test else []) + list(result.baselines)


def _num(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if abs(x) < 1e4 else f"{x:.{digits}g}"


def _threshold_note(best: dict[str, Any]) -> str:
    t = best.get("threshold", 0.5)
    return "" if t is None or abs(t - 0.5) < 1e-12 else f" at threshold <b>{t:.3g}</b>"


def _who(best: dict[str, Any]) -> str:
    trial = best.get("trial")
    return escape(policy_words(str(best["policy"]))) + ("" if trial is None else f", trial {trial}")


# The baselines the headline compares with, and how the sentence names them.
_COMPARED = {
    "unweighted": "unweighted training",
    "theory_weight": "the theory weight w* = {w}",
    "tuned_threshold": "threshold tuning of the unweighted model",
}


def _comparison(result: TuneResult, cost: float) -> str:
    groups: dict[str, list[str]] = {"lower than": [], "the same as": [], "higher than": []}
    for key, words in _COMPARED.items():
        if key not in result.baselines:
            continue
        other = result.baselines[key]["cost_per_example"]
        name = words.format(w=f"{result.cost['theory_weight']:.3g}") + f" ({_num(other)})"
        side = (
            "lower than"
            if cost < other - 1e-12
            else "higher than"
            if cost > other + 1e-12
            else "the same as"
        )
        groups[side].append(name)
    parts = [f"{side} {_join(names)}" for side, names in groups.items() if names]
    if len(parts) > 1:
        parts[-1] = "but " + parts[-1] if parts[-1].startswith("higher") else parts[-1]
    return ", ".join(parts)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def headline(result: TuneResult) -> str:
    """One sentence: chosen weight (and threshold), test cost with interval, savings, comparison."""
    best, test = result.best, result.test
    if best is None or test is None:
        failed = result.trials["failed"]
        return (
            f"No trial completed ({failed} failed), so no weight was chosen; the reasons are "
            "listed below, and the baselines were still scored on the test rows."
        )
    lo, hi = test["ci95"]
    saving = test["savings"]
    saved = f"saving {saving:.1%}" if saving >= 0 else f"costing {-saving:.1%} more than"
    n_test = result.data["rows"]["test"]
    return (
        f"Train with pos_weight = <b>{best['pos_weight']:.4g}</b>{_threshold_note(best)} "
        f"({_who(best)}): on the {n_test} held-out test rows it costs "
        f"<b>{_num(test['cost_per_example'])}</b> per example (95% interval {_num(lo)} to "
        f"{_num(hi)}), {saved}{' against' if saving >= 0 else ''} the cheaper of flagging nobody or "
        f"everybody, and {_comparison(result, test['cost_per_example'])}.{_paired_note(result)}"
    )


def _paired_note(result: TuneResult) -> str:
    """The paired test difference with the strongest baseline that is a different policy."""
    others = {k: v for k, v in result.baselines.items() if "chosen_minus_this" in v}
    others.pop("all_negative", None)
    others.pop("all_positive", None)
    if not others:
        return ""
    name, base = min(others.items(), key=lambda kv: kv[1]["cost_per_example"])
    d = base["chosen_minus_this"]
    return (
        f" Against the strongest other baseline, {escape(baseline_words(name))}, the paired "
        f"difference is {d['mean']:+.4f} per example (95% interval {d['ci95'][0]:+.4f} to "
        f"{d['ci95'][1]:+.4f})."
    )


def _diff_cell(s: dict[str, Any]) -> str:
    d = s.get("chosen_minus_this")
    if d is None:
        return "<td>-</td>"
    return f"<td>{d['mean']:+.4f} ({d['ci95'][0]:+.4f} to {d['ci95'][1]:+.4f})</td>"


def _candidates_table(result: TuneResult) -> str:
    """The policies the choice weighed: validation (CV) cost decides, test shows what each cost."""
    best = result.best
    if best is None or not best.get("candidates"):
        return ""
    rows = []
    for c in best["candidates"]:
        t = c["test"]
        cls = ' class="chosen"' if c["policy"] == best["policy"] else ""
        rows.append(
            f"<tr{cls}><td>{escape(policy_words(c['policy']))}</td>"
            f"<td>{c['pos_weight']:.4g}</td><td>{c['threshold']:.4g}</td>"
            f"<td>{_num(c['val_cost_per_example'])} &plusmn; {_num(c['val_cost_se'])}</td>"
            f"<td>{_num(t['cost_per_example'])} ({_num(t['ci95'][0])} to {_num(t['ci95'][1])})</td>"
            f"{_diff_cell(t)}</tr>"
        )
    rule = escape(best["rule"][0].upper() + best["rule"][1:])
    return (
        f'<p id="rule">{rule}.</p>'
        '<table id="candidates"><tr><th>policy</th><th>pos_weight</th><th>threshold</th>'
        "<th>validation cost &plusmn; se (decides)</th><th>test cost (95%)</th>"
        "<th>chosen minus this (paired 95%)</th></tr>" + "".join(rows) + "</table>"
    )


def _cards(result: TuneResult) -> str:
    best, test = result.best, result.test
    if best is None or test is None:
        return ""
    lo, hi = test["ci95"]
    # the baselines that are another policy than the chosen one (the same one has no difference)
    others = {
        k: v
        for k, v in result.baselines.items()
        if k not in ("all_negative", "all_positive") and "chosen_minus_this" in v
    }
    best_base = min(others, key=lambda k: others[k]["cost_per_example"]) if others else None
    threshold = 0.5 if best.get("threshold") is None else best["threshold"]
    cards = [
        (
            "chosen pos_weight",
            f"{best['pos_weight']:.4g}",
            f"threshold {threshold:.3g}; {_who(best)}",
            True,
        ),
        (
            "test cost per example",
            _num(test["cost_per_example"]),
            f"95% interval {_num(lo)} to {_num(hi)}, {result.data['rows']['test']} rows",
            True,
        ),
        (
            "savings",
            f"{test['savings']:.1%}",
            "vs the cheaper of flagging nobody or everybody",
            False,
        ),
    ]
    if best_base is not None:
        diff = result.baselines[best_base]["cost_per_example"] - test["cost_per_example"]
        cards.append(
            (
                "best baseline",
                _num(result.baselines[best_base]["cost_per_example"]),
                f"{escape(baseline_words(best_base))}; the chosen policy is "
                f"{_num(abs(diff))} {'lower' if diff >= 0 else 'higher'}",
                False,
            )
        )
    body = "".join(
        f'<div class="card{" hi" if hi else ""}"><div class="k">{k}</div><div class="v">{v}</div>'
        f'<div class="s">{s}</div></div>'
        for k, v, s, hi in cards
    )
    return f'<div class="cards" id="cards">{body}</div>'


def _baselines_table(result: TuneResult) -> str:
    rows = []
    entries = ([("chosen", result.test)] if result.test else []) + list(result.baselines.items())
    for name, s in entries:
        lo, hi = s["ci95"]
        cls = ' class="chosen"' if name == "chosen" else ""
        rows.append(
            f"<tr{cls}><td>{escape(baseline_words(name))}</td>"
            f"<td>{_num(s['cost_per_example'])}</td><td>{_num(lo)} to {_num(hi)}</td>"
            f"{_diff_cell(s)}"
            f"<td>{s['savings']:.1%}</td><td>{s['tp']}</td><td>{s['fp']}</td><td>{s['tn']}</td>"
            f"<td>{s['fn']}</td></tr>"
        )
    return (
        '<table id="baselines"><tr><th>policy (test rows)</th><th>cost per example</th>'
        "<th>95% interval</th><th>chosen minus this (paired 95%)</th>"
        "<th>savings</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _problems_table(result: TuneResult) -> str:
    problems = F.states_info(result.trials_table).problems
    if not problems:
        return '<p class="muted">Every trial completed.</p>'
    # Grouped by state and reason: a study can fail hundreds of trials for one reason, and a row
    # each would bury the distinct reasons (and grow the page with the study).
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for number, state, weight, reason in problems:
        groups.setdefault((state, reason), []).append((number, weight))
    rows = []
    for (state, reason), members in sorted(groups.items(), key=lambda g: -len(g[1])):
        numbers = [n for n, _ in members]
        shown = ", ".join(map(str, numbers[:12])) + (
            f" and {len(numbers) - 12} more" if len(numbers) > 12 else ""
        )
        weights = [w for _, w in members]
        span = f"{min(weights):.4g}" + (
            f" to {max(weights):.4g}" if max(weights) > min(weights) else ""
        )
        rows.append(
            f"<tr><td>{escape(F.shown_state(state))}</td><td>{len(numbers)}</td><td>{shown}</td>"
            f"<td>{span}</td><td>{escape(reason) or '-'}</td></tr>"
        )
    return (
        '<table id="problems"><tr><th>state</th><th>trials</th><th>trial numbers</th>'
        "<th>pos_weight</th><th>reason</th></tr>" + "".join(rows) + "</table>"
    )


def _facts(result: TuneResult) -> str:
    d, s, t = result.data, result.search, result.timing
    rows = [
        ("study", result.study["name"]),
        ("data", result.spec["data"]["path"]),
        ("label", f"{d['label']} (positive = {d['positive_label']})"),
        (
            "rows train / val / test",
            " / ".join(str(d["rows"][k]) for k in ("train", "val", "test")),
        ),
        (
            "positives train / val / test",
            " / ".join(str(d["positives"][k]) for k in ("train", "val", "test")),
        ),
        (
            "costs",
            ", ".join(
                f"{k.upper()} = {_cost_text(result.cost[k])}" for k in ("fn", "fp", "tp", "tn")
            ),
        ),
        ("theory weight", _theory_text(result)),
        ("weight range", f"{s['low']:.3g} to {s['high']:.3g} (log scale), sampler {s['sampler']}"),
        (
            "trial score",
            f"{s['folds']}-fold cross-validation of train+val"
            + (f", {s['repeats']} repeats" if s.get("repeats", 1) > 1 else "")
            if s["folds"] > 1
            else "cost on the validation split",
        ),
        ("trials", ", ".join(f"{v} {k}" for k, v in result.trials.items())),
        (
            "search time",
            f"{t['seconds']:.3g} s on {t['device']}, population {s['population']}"
            if t.get("trials_run", 1)
            else f"no trial run by this process (rebuilt from storage), on {t['device']}",
        ),
    ]
    if s.get("stopped_reason"):
        rows.append(("stopped", s["stopped_reason"]))
    if result.best is not None:
        rows.append(
            (
                "plateau (within 1 se of best)",
                f"{result.best['plateau'][0]:.3g} to {result.best['plateau'][1]:.3g}",
            )
        )
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _theory_text(result: TuneResult) -> str:
    if any(isinstance(result.cost[k], str) for k in ("fn", "fp", "tp", "tn")):
        return (
            "1: per-example costs train as per-sample weights (positives by C_FN - C_TP, "
            "negatives by C_FP - C_TN), so the weighted loss already carries them"
        )
    return f"w* = (C_FN - C_TP) / (C_FP - C_TN) = {result.cost['theory_weight']:.4g}"


def _cost_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else f"column {v!r}"


def _figure_payload(fig: go.Figure, shared_template: dict[str, Any]) -> str:
    d = fig.to_dict()
    # Every figure uses one template; it is written once for the page, not once per figure.
    if d["layout"].get("template") == shared_template:
        del d["layout"]["template"]
    # "</" inside JSON would close the <script> element early: escape it.
    return to_json_plotly(d).replace("</", "<\\/")


# Draws each figure on its own, so one that fails (reported on the console) spares the others.
_DRAW = """
function fnsearchDraw(id, f) {
  if (!f.layout.template) f.layout.template = FNSEARCH_TEMPLATE;
  try { Plotly.newPlot(id, f.data, f.layout, {responsive: true, displaylogo: false}); }
  catch (e) { console.error("figure " + id + ": " + e); }
}
"""


def _versions_line(result: TuneResult) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in result.versions.items())
    return escape(f"fnsearch {result.fnsearch_version}; {parts}")


def render_report(result: TuneResult) -> str:
    """The whole report as one HTML string."""
    figs = figures(result)
    shared = pio.templates[F.TEMPLATE].to_plotly_json()
    blocks = "".join(
        f'<figure><div class="plot" id="fig-{i}"></div>'
        f"<figcaption>{_CAPTIONS.get(i, '')}</figcaption></figure>"
        for i, _ in figs
    )
    scripts = "\n".join(
        f"fnsearchDraw({json.dumps('fig-' + i)}, {_figure_payload(f, shared)});" for i, f in figs
    )
    warn = ""
    if result.best is None:
        what = (
            "Every trial failed"
            if result.trials["failed"] == len(result.trials_table)
            else ("No trial completed")
        )
        warn = (
            f'<p class="warn" id="no-trial"><b>{what}</b>: there is no chosen model. '
            "See the reasons below.</p>"
        )
    spec_json = escape(json.dumps(result.spec, indent=2))
    name = escape(result.study["name"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fnsearch report: {name}</title>
<style>{_CSS}</style>
<script>{get_plotlyjs()}</script>
</head><body><main>
<h1>Which pos_weight? fnsearch report for {name}</h1>
{warn}
<p class="lead" id="headline">{headline(result)}</p>
{_cards(result)}
<p class="muted">Per-trial figures show validation (or cross-validation) values only; test values
appear only for the candidate policies and the baselines, all refitted on the same train + validation
rows for their cross-validated epochs.
Scores are sigmoid outputs of a model trained with pos_weight, not calibrated probabilities.</p>
{_sampled_note(result)}
<div class="grid">{blocks}</div>
<h2>How the policy was chosen</h2>
{_candidates_table(result)}
<h2>Baselines on the test rows</h2>
{_baselines_table(result)}
<h2>Trials that did not complete</h2>
{_problems_table(result)}
<h2>Study</h2>
{_facts(result)}
<details><summary>Spec (merged and validated)</summary>
<pre>{spec_json}</pre></details>
<p class="muted">{_versions_line(result)}</p>
</main>
<script>
var FNSEARCH_TEMPLATE = {to_json_plotly(shared)};
{_DRAW}
{scripts}
</script>
</body></html>
"""

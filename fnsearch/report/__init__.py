"""The HTML report: one self-contained page, plotly.js inlined once, nothing loaded from a network.

Every string that comes from the user (column names, labels, study name, reasons) is escaped: the
page shows it as text and never runs it.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from ..result import POLICY_NAMES, TuneResult
from . import _figures as F

__all__ = ["figures", "headline", "render_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.5rem;margin:0 0 8px} h2{font-size:1.15rem;margin:28px 0 8px}
.lead{font-size:1.1rem;line-height:1.5;background:#fff;border-left:4px solid #d62728;padding:12px 16px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
.fig{background:#fff;border:1px solid #e5e5e5;border-radius:6px;min-height:300px}
table{border-collapse:collapse;background:#fff;font-size:.92rem}
th,td{border:1px solid #e0e0e0;padding:5px 9px;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left} .chosen{font-weight:600;background:#fff4f4}
.muted{color:#666;font-size:.9rem} pre{background:#fff;border:1px solid #e5e5e5;padding:10px;overflow:auto}
.warn{background:#fff3cd;border-left:4px solid #e0a800;padding:10px 14px}
"""

_POLICY_NAMES = {
    "chosen": "chosen policy",
    "unweighted": "unweighted (w = 1, threshold 0.5)",
    "theory_weight": "theory weight (w*, threshold 0.5)",
    "tuned_threshold": "tuned threshold (w = 1, threshold tuned by cross-validation)",
    "bayes_threshold": "Bayes threshold (unweighted model, threshold from the costs)",
    "searched": "searched weight (threshold 0.5)",
    "searched_tuned_threshold": "searched weight with a tuned threshold",
    "all_negative": "flag nobody (all negative)",
    "all_positive": "flag everybody (all positive)",
}


def figures(result: TuneResult) -> list[tuple[str, go.Figure]]:
    """The report's figures, in page order, as (id, figure)."""
    trials = result.trials_table
    theory = result.cost["theory_weight"]
    out: list[tuple[str, go.Figure]] = []
    cost = F.cost_info(trials, result.best, theory)
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
    history = F.history_info(trials)
    if history.number:
        out.append(("history", F.plot_history(history)))
    out.append(("states", F.plot_states(F.states_info(trials))))
    return out


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return (
            f"{x:.{digits}g}" if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3) else f"{x:.{digits}f}"
        )
    return escape(str(x))


def headline(result: TuneResult) -> str:
    """One sentence: chosen policy, weight and threshold, test cost with interval, savings, and the
    paired comparison with the strongest baseline."""
    best, test = result.best, result.test
    if best is None or test is None:
        return (
            "No trial completed, so no weight was chosen. "
            f"{result.trials['failed']} trial(s) failed; their reasons are listed below."
        )
    lo, hi = test["ci95"]
    threshold = "" if best["threshold"] == 0.5 else f" and threshold {best['threshold']:.3g}"
    others = {k: v for k, v in result.baselines.items() if "chosen_minus_this" in v}
    text = (
        f"Chosen: {escape(POLICY_NAMES[best['policy']])}, pos_weight "
        f"<b>{best['pos_weight']:.4g}</b>{threshold}. On the held-out test rows it costs "
        f"<b>{test['cost_per_example']:.4f}</b> per example (95% interval {lo:.4f} to {hi:.4f}), "
        f"savings {test['savings']:.1%} over the cheaper trivial policy."
    )
    if others:
        name, base = min(others.items(), key=lambda kv: kv[1]["cost_per_example"])
        d = base["chosen_minus_this"]
        text += (
            f" The strongest baseline, {escape(_POLICY_NAMES[name])}, costs "
            f"{base['cost_per_example']:.4f}: chosen minus baseline {d['mean']:+.4f} per example "
            f"(paired 95% interval {d['ci95'][0]:+.4f} to {d['ci95'][1]:+.4f})."
        )
    return text


def _diff_cell(s: dict[str, Any]) -> str:
    d = s.get("chosen_minus_this")
    if d is None:
        return "<td>-</td>"
    return f"<td>{d['mean']:+.4f} ({d['ci95'][0]:+.4f} to {d['ci95'][1]:+.4f})</td>"


def _baselines_table(result: TuneResult) -> str:
    rows = []
    entries = ([("chosen", result.test)] if result.test else []) + list(result.baselines.items())
    for name, s in entries:
        lo, hi = s["ci95"]
        cls = ' class="chosen"' if name == "chosen" else ""
        rows.append(
            f"<tr{cls}><td>{escape(_POLICY_NAMES.get(name, name))}</td>"
            f"<td>{s['cost_per_example']:.4f}</td><td>{lo:.4f} to {hi:.4f}</td>"
            f"{_diff_cell(s) if name != 'chosen' else '<td>-</td>'}"
            f"<td>{s['savings']:.1%}</td><td>{s['tp']}</td><td>{s['fp']}</td><td>{s['tn']}</td>"
            f"<td>{s['fn']}</td></tr>"
        )
    return (
        "<table><tr><th>policy (test rows)</th><th>cost per example</th><th>95% interval</th>"
        "<th>chosen minus this (paired 95%)</th>"
        "<th>savings</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _candidates_table(result: TuneResult) -> str:
    """The policies the choice weighed: validation (CV) cost decides, test shows what it cost."""
    best = result.best
    if best is None:
        return ""
    rows = []
    for c in best["candidates"]:
        t = c["test"]
        cls = ' class="chosen"' if c["policy"] == best["policy"] else ""
        rows.append(
            f"<tr{cls}><td>{escape(_POLICY_NAMES[c['policy']])}</td>"
            f"<td>{c['pos_weight']:.4g}</td><td>{c['threshold']:.3g}</td>"
            f"<td>{c['val_cost_per_example']:.4f} &plusmn; {c['val_cost_se']:.4f}</td>"
            f"<td>{t['cost_per_example']:.4f} ({t['ci95'][0]:.4f} to {t['ci95'][1]:.4f})</td>"
            f"{_diff_cell(t)}</tr>"
        )
    return (
        f"<p>{escape(best['rule'][0].upper() + best['rule'][1:])}.</p>"
        "<table><tr><th>policy</th><th>pos_weight</th><th>threshold</th>"
        "<th>validation cost &plusmn; se (decides)</th><th>test cost (95%)</th>"
        "<th>chosen minus this (paired 95%)</th></tr>" + "".join(rows) + "</table>"
    )


def _problems_table(result: TuneResult) -> str:
    problems = F.states_info(result.trials_table).problems
    if not problems:
        return '<p class="muted">Every trial completed.</p>'
    rows = "".join(
        f"<tr><td>{n}</td><td>{escape(s)}</td><td>{w:.4g}</td><td>{escape(r)}</td></tr>"
        for n, s, w, r in problems
    )
    return (
        "<table><tr><th>trial</th><th>state</th><th>pos_weight</th><th>reason</th></tr>"
        f"{rows}</table>"
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
        ("search time", f"{t['seconds']:.1f} s on {t['device']}, population {s['population']}"),
    ]
    if result.best is not None:
        rows.append(
            (
                "plateau (within 1 se of best)",
                f"{result.best['plateau'][0]:.3g} to {result.best['plateau'][1]:.3g}",
            )
        )
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _theory_text(result: TuneResult) -> str:
    if any(isinstance(result.cost[k], str) for k in ("fn", "fp", "tp", "tn")):
        return (
            "1: per-example costs train as per-sample weights (positives by C_FN - C_TP, "
            "negatives by C_FP - C_TN), so the weighted loss already carries them"
        )
    return f"w* = (C_FN - C_TP) / (C_FP - C_TN) = {result.cost['theory_weight']:.4g}"


def _cost_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else f"column {v!r}"


def _figure_script(div_id: str, fig: go.Figure) -> str:
    # "</" inside JSON would close the <script> element early: escape it.
    payload = fig.to_json().replace("</", "<\\/")
    return (
        f"(function(f){{Plotly.newPlot({json.dumps(div_id)}, f.data, f.layout, "
        f"{{responsive: true, displaylogo: false}});}})({payload});"
    )


def _versions_line(result: TuneResult) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in result.versions.items())
    return escape(f"fnsearch {result.fnsearch_version}; {parts}")


def render_report(result: TuneResult) -> str:
    """The whole report as one HTML string."""
    figs = figures(result)
    divs = "".join(f'<div class="fig" id="fig-{i}"></div>' for i, _ in figs)
    scripts = "\n".join(_figure_script(f"fig-{i}", f) for i, f in figs)
    warn = ""
    if result.best is None:
        warn = '<p class="warn">Every trial failed: there is no chosen model. See the reasons below.</p>'
    spec_json = escape(json.dumps(result.spec, indent=2))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fnsearch report: {escape(result.study["name"])}</title>
<style>{_CSS}</style>
<script>{get_plotlyjs()}</script>
</head><body><main>
<h1>fnsearch report: {escape(result.study["name"])}</h1>
{warn}
<p class="lead" id="headline">{headline(result)}</p>
<p class="muted">Per-trial figures show validation (or cross-validation) values only; test values
appear only for the candidate policies and the baselines below, all refitted on the same
train + validation rows for their cross-validated epochs.
Scores are sigmoid outputs of a model trained with pos_weight, not calibrated probabilities.</p>
<h2>How the policy was chosen</h2>
{_candidates_table(result)}
<h2>Baselines on the test rows</h2>
{_baselines_table(result)}
<h2>Figures</h2>
<div class="grid">{divs}</div>
<h2>Trials that did not complete</h2>
{_problems_table(result)}
<h2>Study</h2>
{_facts(result)}
<h2>Spec</h2>
<pre>{spec_json}</pre>
<p class="muted">{_versions_line(result)}</p>
</main>
<script>
{scripts}
</script>
</body></html>
"""

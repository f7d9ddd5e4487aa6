"""From a finished study to a result: the chosen policy, held-out evidence, baselines, the final model.

Choice happens on validation (or cross-validation) values only. The chosen policy and every baseline
are then fitted on the same training rows, early-stopped on the same validation rows, and scored
once on the test rows, with bootstrap intervals. The model behind ``predict`` is refitted last.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
import sklearn
import torch
from optuna.trial import TrialState
from sklearn.metrics import precision_recall_curve, roc_curve

from ._version import __version__
from .costs import (
    bayes_threshold,
    bootstrap_ci,
    confusion_counts,
    example_costs,
    paired_difference,
    savings,
)
from .data import Dataset, Preprocessor
from .models import PopulationNet
from .search import ATTR, PARAM, SearchStats
from .spec import Spec
from .tensors import make_split
from .train import TrainConfig, train_population
from .words import policy_words

__all__ = ["SCHEMA_VERSION", "TRIAL_COLUMNS", "TuneResult", "build_result", "trials_frame"]

SCHEMA_VERSION = 1
TRIAL_COLUMNS = [
    "number",
    "state",
    "pos_weight",
    "threshold",
    "value",
    "value_se",
    "tp",
    "fp",
    "tn",
    "fn",
    "pred_pos_rate",
    "fail_reason",
    "seconds",
]
_SECTIONS = (
    "schema_version",
    "fnsearch_version",
    "versions",
    "study",
    "spec",
    "data",
    "cost",
    "best",
    "test",
    "baselines",
    "trials",
    "timing",
    "search",
)


@dataclass
class TuneResult:
    """The outcome of :func:`fnsearch.tune`: one attribute per ``summary.json`` section.

    ``to_dict()`` is exactly ``summary.json``. The fitted model, its preprocessing and the data
    behind the report's figures are attributes too, but not part of the summary.
    """

    schema_version: int
    fnsearch_version: str
    versions: dict[str, str]
    study: dict[str, Any]
    spec: dict[str, Any]
    data: dict[str, Any]
    cost: dict[str, Any]
    best: dict[str, Any] | None
    test: dict[str, Any] | None
    baselines: dict[str, dict[str, Any]]
    trials: dict[str, int]
    timing: dict[str, Any]
    search: dict[str, Any]
    trials_table: pd.DataFrame = field(repr=False)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)
    model_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    preprocessor: Preprocessor | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (``summary.json``)."""
        return {name: _plain(getattr(self, name)) for name in _SECTIONS}

    @property
    def pos_weight(self) -> float | None:
        """The chosen weight (None when no trial completed)."""
        return None if self.best is None else self.best["pos_weight"]


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def versions() -> dict[str, str]:
    """Versions of what produced a result."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "sklearn": sklearn.__version__,
        "pandas": pd.__version__,
    }


# --- the trials table ------------------------------------------------------------------------


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial with the columns of ``trials.csv`` (DESIGN.md), typed."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs.get(ATTR, {})
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "pos_weight": t.params.get(PARAM, np.nan),
                "threshold": 0.5,
                "value": t.value if t.state == TrialState.COMPLETE else np.nan,
                "value_se": a.get("value_se"),
                "tp": a.get("tp"),
                "fp": a.get("fp"),
                "tn": a.get("tn"),
                "fn": a.get("fn"),
                "pred_pos_rate": a.get("pred_pos_rate"),
                "fail_reason": t.user_attrs.get("fail_reason", ""),
                "seconds": a.get("seconds"),
                "tuned_threshold": a.get("tuned_threshold"),
                "tuned_value": a.get("tuned_value"),
                "tuned_value_se": a.get("tuned_value_se"),
                "epochs": ";".join(str(e) for e in a.get("epochs", [])),
            }
        )
    extra = ["tuned_threshold", "tuned_value", "tuned_value_se", "epochs"]
    frame = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, *extra])
    for col in ("tp", "fp", "tn", "fn"):
        frame[col] = frame[col].astype("Int64")
    for col in (
        "pos_weight",
        "threshold",
        "value",
        "value_se",
        "pred_pos_rate",
        "seconds",
        "tuned_threshold",
        "tuned_value",
        "tuned_value_se",
    ):
        frame[col] = frame[col].astype(float)
    frame["fail_reason"] = frame["fail_reason"].fillna("").astype(str)
    frame["epochs"] = frame["epochs"].astype(str)
    return frame.sort_values("number").reset_index(drop=True)


# --- choosing --------------------------------------------------------------------------------

# Candidate policies, simplest first: the one-standard-error rule takes the first whose validation
# cost is within one standard error of the lowest, so the search moves away from theory only when
# the data clearly says so.
POLICIES = ("theory_weight", "tuned_threshold", "searched", "searched_tuned_threshold")


@dataclass(frozen=True)
class Candidate:
    """A policy as validated: its weight, threshold, (smoothed) CV cost and training epochs."""

    policy: str
    pos_weight: float
    threshold: float
    val_cost: float
    val_se: float
    epochs: int
    trial: int | None  # the trial it is, or None when it is a point of the smoothed curve

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "pos_weight": self.pos_weight,
            "threshold": self.threshold,
            "val_cost_per_example": self.val_cost,
            "val_cost_se": self.val_se,
            "trial": self.trial,
        }


def kernel_smooth(x: np.ndarray, v: np.ndarray, at: np.ndarray, bandwidth: float) -> np.ndarray:
    """Local-linear Gaussian-kernel regression of ``v`` observed at ``x``, evaluated ``at``.

    Local-linear rather than a plain kernel average: near the ends of the searched range (and on
    a one-sided slope) a plain average drifts toward where the trials are, moving the minimum.
    """
    at = np.asarray(at, dtype=float)
    # In blocks of evaluation points: a 10,000-trial study would otherwise need 10^8-cell arrays.
    step = max(1, (1 << 22) // max(x.size, 1))
    return np.concatenate(
        [_local_linear(x, v, at[i : i + step], bandwidth) for i in range(0, at.size, step)]
    )


def _local_linear(x: np.ndarray, v: np.ndarray, at: np.ndarray, bandwidth: float) -> np.ndarray:
    d = x[None, :] - at[:, None]
    k = np.exp(-0.5 * (d / bandwidth) ** 2)
    s0, s1, s2 = k.sum(axis=1), (k * d).sum(axis=1), (k * d * d).sum(axis=1)
    t0, t1 = (k * v).sum(axis=1), (k * d * v).sum(axis=1)
    det = s0 * s2 - s1 * s1
    # Where the local design is degenerate (one distinct nearby weight) fall back to the average.
    ok = det > 1e-12 * np.maximum(s0 * s2, 1e-300)
    return np.where(ok, (s2 * t0 - s1 * t1) / np.where(ok, det, 1.0), t0 / s0)


def smoothing_bandwidth(log_w: np.ndarray) -> float:
    """Silverman's rule on log10 weights, kept between 0.05 and 0.25 decades: wide enough to average
    out trial-to-trial luck, narrow enough to keep a real minimum where it is."""
    if log_w.size < 2:
        return 0.05
    return float(np.clip(1.06 * log_w.std(ddof=1) * log_w.size**-0.2, 0.05, 0.25))


def trial_epochs(row: pd.Series, fallback: int) -> int:
    """A trial's training length for a refit: the median of its per-fold early-stopped epochs."""
    parts = [int(e) for e in str(row.get("epochs", "")).split(";") if e.strip().isdigit()]
    return int(max(1, np.median(parts))) if parts else fallback


def candidates(
    trials: pd.DataFrame, *, w_star: float, fallback_epochs: int
) -> tuple[list[Candidate], list[float]]:
    """The candidate policies from the complete trials, and the plateau ``[low, high]``."""
    ok = trials[(trials["state"] == "complete") & np.isfinite(trials["value"])]
    ok = ok.sort_values("pos_weight").reset_index(drop=True)
    if ok.empty:
        return [], []
    x = np.log10(ok["pos_weight"].to_numpy(float))
    h = smoothing_bandwidth(x)
    value = kernel_smooth(x, ok["value"].to_numpy(float), x, h)
    tuned_raw = ok["tuned_value"].to_numpy(float)
    has_tuned = bool(np.isfinite(tuned_raw).all())
    tuned = kernel_smooth(x, tuned_raw, x, h) if has_tuned else None

    def exact(w: float) -> int | None:  # the (first, i.e. enqueued) trial at exactly this weight
        hit = np.flatnonzero(np.isclose(ok["pos_weight"].to_numpy(float), w, rtol=1e-9))
        return int(hit[np.argmin(ok["number"].to_numpy()[hit])]) if hit.size else None

    def make(policy: str, i: int, cost: float, tuned_policy: bool, trial: bool) -> Candidate:
        row = ok.iloc[i]
        return Candidate(
            policy,
            float(row["pos_weight"]),
            float(row["tuned_threshold"]) if tuned_policy else 0.5,
            float(cost),
            float(row["tuned_value_se"] if tuned_policy else row["value_se"]),
            trial_epochs(row, fallback_epochs),
            int(row["number"]) if trial else None,
        )

    out = []
    i_star, i_one = exact(w_star), exact(1.0)
    if i_star is not None:
        out.append(make("theory_weight", i_star, value[i_star], False, True))
    if tuned is not None and i_one is not None:
        out.append(make("tuned_threshold", i_one, tuned[i_one], True, True))
    i = int(np.argmin(value))
    out.append(make("searched", i, value[i], False, True))
    if tuned is not None:
        j = int(np.argmin(tuned))
        out.append(make("searched_tuned_threshold", j, tuned[j], True, True))
    near = ok["pos_weight"][value <= value[i] + float(ok.iloc[i]["value_se"])]
    return out, [float(near.min()), float(near.max())]


def choose(
    found: list[Candidate], rule: str = "one_se", *, thresholds: bool = True
) -> tuple[Candidate, str] | None:
    """The chosen candidate and a sentence saying which rule picked it. ``thresholds=False``
    (``[search] tune_threshold = false``) leaves out the policies with a tuned threshold."""
    if not thresholds:
        found = [c for c in found if c.policy in ("theory_weight", "searched")]
    if not found:
        return None
    lowest = min(found, key=lambda c: c.val_cost)
    if rule == "lowest":
        return lowest, f"{policy_words(lowest.policy)} has the lowest validation cost"
    limit = lowest.val_cost + lowest.val_se
    chosen = next(
        c for c in sorted(found, key=lambda c: POLICIES.index(c.policy)) if c.val_cost <= limit
    )
    if chosen is lowest:
        return chosen, (
            f"{policy_words(chosen.policy)} has the lowest validation cost, and no simpler policy "
            f"is within one standard error ({lowest.val_se:.4f}) of it"
        )
    return chosen, (
        f"{policy_words(chosen.policy)} is within one standard error ({lowest.val_se:.4f}) of the "
        f"lowest validation cost ({policy_words(lowest.policy)}, {lowest.val_cost:.4f}) and "
        "simpler, so the one-standard-error rule prefers it"
    )


# --- held-out evaluation ---------------------------------------------------------------------


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))


@dataclass
class _Holdout:
    test: dict[str, Any] | None
    baselines: dict[str, dict[str, Any]]
    candidates: list[dict[str, Any]]
    tuned_threshold: float
    test_scores: np.ndarray
    state: dict[str, torch.Tensor]  # the chosen member, fitted on train + validation rows
    preprocessor: Preprocessor


def _fit_pool(
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
    members: list[tuple[float, int]],
    *,
    plain: bool = False,
) -> tuple[np.ndarray, PopulationNet, Preprocessor]:
    """Test logits of members ``(pos_weight, epochs)`` fitted on train + validation rows for their
    CV-chosen epochs, the fitted population and its preprocessing. ``plain``: without per-example
    cost weights (the unweighted baseline)."""
    split, pre = make_split(dataset, dataset.pool, None, device)
    if plain:
        split = replace(split, sample_weight=None)
    weights = np.asarray([w for w, _ in members])
    fit = train_population(split, weights, config, fixed_epochs=np.asarray([e for _, e in members]))
    with torch.no_grad():
        x_test = torch.as_tensor(pre.transform(dataset.features.iloc[dataset.test]), device=device)
        return fit.net.logits(x_test).float().cpu().numpy(), fit.net, pre


def _fallback_epochs(dataset: Dataset, config: TrainConfig, device, w_star: float) -> list[int]:
    """With no complete trial to learn epochs from: early-stop w = 1 and w* on the validation rows."""
    split, _ = make_split(dataset, dataset.train, dataset.val, device)
    fit = train_population(split, np.asarray([1.0, w_star]), config)
    return [int(max(1, e)) for e in fit.epochs]


def _evaluate_holdout(
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
    found: list[Candidate],
    chosen: Candidate | None,
    w_star: float,
    seed: int,
) -> _Holdout:
    """Refit every candidate and baseline on train + validation, score each once on test."""
    by_policy = {c.policy: c for c in found}
    if "theory_weight" in by_policy and "tuned_threshold" in by_policy:
        e_star, e_one = by_policy["theory_weight"].epochs, by_policy["tuned_threshold"].epochs
        threshold = by_policy["tuned_threshold"].threshold
    else:
        e_one, e_star = _fallback_epochs(dataset, config, device, w_star)
        threshold = (
            by_policy["tuned_threshold"].threshold if "tuned_threshold" in by_policy else 0.5
        )
    members = [(1.0, e_one), (w_star, e_star), *((c.pos_weight, c.epochs) for c in found)]
    logits, net, pre = _fit_pool(dataset, config, device, members)
    plain = None
    if dataset.costs.per_example:
        plain = _fit_pool(dataset, config, device, [(1.0, e_one)], plain=True)[0][0]
    y, costs = dataset.y[dataset.test], dataset.costs.take(dataset.test)
    n = y.size
    unweighted = logits[0] if plain is None else plain
    decisions = {
        "unweighted": unweighted >= 0,
        "theory_weight": logits[1] >= 0,
        "tuned_threshold": _sigmoid(logits[0]) >= threshold,
        "bayes_threshold": _sigmoid(unweighted) >= bayes_threshold(costs),
        "all_negative": np.zeros(n, dtype=bool),
        "all_positive": np.ones(n, dtype=bool),
    }
    for i, c in enumerate(found):
        decisions[c.policy] = _sigmoid(logits[2 + i]) >= c.threshold
    row_costs = {k: example_costs(y, pred, costs) for k, pred in decisions.items()}

    def score(name: str) -> dict[str, Any]:
        cost = row_costs[name]
        out = {
            "cost_per_example": float(cost.mean()),
            "ci95": list(bootstrap_ci(cost, seed=seed)),
            **confusion_counts(y, decisions[name]),
            "savings": savings(float(cost.mean()), y, costs),
        }
        if chosen is not None and name != chosen.policy:
            # chosen minus this one on the same test rows: negative = the chosen policy is cheaper
            out["chosen_minus_this"] = paired_difference(row_costs[chosen.policy], cost, seed=seed)
        return out

    names = ("unweighted", "theory_weight", "tuned_threshold", "bayes_threshold")
    baselines = {k: score(k) for k in (*names, "all_negative", "all_positive")}
    cands = [{**c.to_dict(), "test": score(c.policy)} for c in found]
    test, member = None, 0
    if chosen is not None:
        test, member = score(chosen.policy), 2 + found.index(chosen)
    return _Holdout(
        test, baselines, cands, threshold, _sigmoid(logits[member]), net.state_of(member), pre
    )


def _curves(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    fpr, tpr, _ = roc_curve(y, scores)
    precision, recall, _ = precision_recall_curve(y, scores)
    pred = scores >= threshold
    c = confusion_counts(y, pred)
    keep = _thin(fpr.size)
    keep_pr = _thin(precision.size)
    return {
        "roc": {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()},
        "pr": {"recall": recall[keep_pr].tolist(), "precision": precision[keep_pr].tolist()},
        "operating_point": {
            "fpr": c["fp"] / max(1, c["fp"] + c["tn"]),
            "tpr": c["tp"] / max(1, c["tp"] + c["fn"]),
            "precision": c["tp"] / max(1, c["tp"] + c["fp"]),
        },
    }


def _thin(n: int, most: int = 400) -> np.ndarray:
    # Curves of a 1M-row test set have up to 1M points; 400 draw the same picture.
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def _final_model(
    dataset: Dataset, config: TrainConfig, device: torch.device, w: float, epochs: int
) -> tuple[dict[str, torch.Tensor], Preprocessor]:
    rows = np.arange(dataset.y.size)
    split, pre = make_split(dataset, rows, None, device)
    fit = train_population(split, np.asarray([w]), config, fixed_epochs=np.asarray([epochs]))
    return fit.net.state_of(0), pre


def build_result(
    spec: Spec,
    dataset: Dataset,
    study: optuna.Study,
    *,
    config: TrainConfig,
    device: torch.device,
    stats: SearchStats,
    w_star: float,
    low: float,
    high: float,
    n_folds: int,
) -> TuneResult:
    """Choose, evaluate on test, refit, and assemble the result of a finished study."""
    seed = spec.study["seed"]
    table = trials_frame(study)
    found, plateau = candidates(table, w_star=w_star, fallback_epochs=config.epochs)
    picked = choose(found, spec.search["choose"], thresholds=spec.search["tune_threshold"])
    chosen = picked[0] if picked else None
    hold = _evaluate_holdout(dataset, config, device, found, chosen, w_star, seed)
    model_state = preprocessor = None
    curves: dict[str, Any] = {}
    best = None
    if chosen is not None:
        refit = spec.study["final_refit"]
        best = {
            **chosen.to_dict(),
            "plateau": plateau,
            "rule": picked[1],
            "epochs": chosen.epochs,
            "final_refit": refit,
            "candidates": hold.candidates,
        }
        curves = _curves(dataset.y[dataset.test], hold.test_scores, chosen.threshold)
        if refit:
            model_state, preprocessor = _final_model(
                dataset, config, device, chosen.pos_weight, chosen.epochs
            )
        else:
            model_state, preprocessor = hold.state, hold.preprocessor
    counts = table["state"].value_counts()
    rate = stats.trials_run / stats.seconds if stats.seconds > 0 else None
    return TuneResult(
        schema_version=SCHEMA_VERSION,
        fnsearch_version=__version__,
        versions=versions(),
        study={"name": spec.study["name"]},
        spec=spec.to_dict(),
        data={
            "label": spec.data["label"],
            "positive_label": dataset.positive_label,
            "negative_label": dataset.negative_label,
            "rows": dataset.counts("rows"),
            "positives": dataset.counts("positives"),
            "features": int(dataset.features.shape[1]),
        },
        cost={
            **{k: spec.cost[k] for k in ("fn", "fp", "tp", "tn")},
            "theory_weight": w_star,
            "tuned_threshold": hold.tuned_threshold,
        },
        best=best,
        test=hold.test,
        baselines=hold.baselines,
        trials={
            "complete": int(counts.get("complete", 0)),
            "pruned": int(counts.get("pruned", 0)),
            "failed": int(counts.get("fail", 0)),
        },
        timing={
            "seconds": stats.seconds,
            "trials_per_second": rate,
            "device": _device_name(device),
            "trials_run": stats.trials_run,
        },
        search={
            "low": low,
            "high": high,
            "population": stats.population,
            "folds": n_folds,
            "repeats": spec.search["repeats"],
            "sampler": spec.search["sampler"],
            "max_failed": spec.study["max_failed"] or spec.study["n_trials"],
            "stopped_reason": stats.stopped_reason,
        },
        trials_table=table,
        curves=curves,
        model_state=model_state,
        preprocessor=preprocessor,
    )


def _device_name(device: torch.device) -> str:
    return "cpu" if device.type == "cpu" else f"{device.type}:{device.index or 0}"

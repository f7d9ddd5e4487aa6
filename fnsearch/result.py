"""From a finished study to a result: the chosen policy, held-out evidence, baselines, the final model.

Choice happens on validation (or cross-validation) values only. The chosen policy and every baseline
are then fitted on the same training rows, early-stopped on the same validation rows, and scored
once on the test rows, with bootstrap intervals. The model behind ``predict`` is refitted last.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
import sklearn
import torch
from optuna.trial import TrialState
from sklearn.metrics import precision_recall_curve, roc_curve

from ._version import __version__
from .costs import bootstrap_ci, confusion_counts, example_costs, savings, tune_threshold
from .data import Dataset, Preprocessor
from .search import ATTR, PARAM, SearchStats
from .spec import Spec
from .tensors import make_split
from .train import TrainConfig, train_population

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
                "epochs": ";".join(str(e) for e in a.get("epochs", [])),
            }
        )
    frame = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, "tuned_threshold", "tuned_value", "epochs"])
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
    ):
        frame[col] = frame[col].astype(float)
    frame["fail_reason"] = frame["fail_reason"].fillna("").astype(str)
    frame["epochs"] = frame["epochs"].astype(str)
    return frame.sort_values("number").reset_index(drop=True)


# --- choosing --------------------------------------------------------------------------------


def choose(trials: pd.DataFrame) -> dict[str, Any] | None:
    """The best complete trial on validation, and the plateau within one standard error of it."""
    complete = trials[trials["state"] == "complete"]
    if complete.empty:
        return None
    best = complete.sort_values(["value", "number"]).iloc[0]
    limit = best["value"] + (best["value_se"] if np.isfinite(best["value_se"]) else 0.0)
    near = complete[complete["value"] <= limit]["pos_weight"]
    return {
        "policy": "searched",
        "pos_weight": float(best["pos_weight"]),
        "threshold": 0.5,
        "val_cost_per_example": float(best["value"]),
        "val_cost_se": float(best["value_se"]),
        "plateau": [float(near.min()), float(near.max())],
        "trial": int(best["number"]),
    }


# --- held-out evaluation ---------------------------------------------------------------------


def _policy_scores(
    y: np.ndarray, pred: np.ndarray, dataset: Dataset, rows: np.ndarray, seed: int
) -> dict[str, Any]:
    costs = dataset.costs.take(rows)
    per_example = example_costs(y, pred, costs)
    cost = float(per_example.mean())
    lo, hi = bootstrap_ci(per_example, seed=seed)
    return {
        "cost_per_example": cost,
        "ci95": [lo, hi],
        **confusion_counts(y, pred),
        "savings": savings(cost, y, costs),
    }


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))


@dataclass
class _Holdout:
    test: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    tuned_threshold: float
    epochs: int
    test_scores: np.ndarray
    state: dict[str, torch.Tensor]  # the chosen member, fitted on the train rows
    preprocessor: Preprocessor


def _evaluate_holdout(
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
    chosen_w: float | None,
    w_star: float,
    seed: int,
) -> _Holdout:
    weights = [1.0, w_star] + ([chosen_w] if chosen_w is not None else [])
    split, pre = make_split(dataset, dataset.train, dataset.val, device)
    fit = train_population(split, np.asarray(weights), config)
    with torch.no_grad():
        x_test = torch.as_tensor(pre.transform(dataset.features.iloc[dataset.test]), device=device)
        test_logits = fit.net.logits(x_test).float().cpu().numpy()
    y_test, y_val = dataset.y[dataset.test], dataset.y[dataset.val]
    threshold, _ = tune_threshold(
        y_val, _sigmoid(fit.val_logits[0]), dataset.costs.take(dataset.val)
    )
    n = y_test.size

    def score(pred: np.ndarray) -> dict[str, Any]:
        return _policy_scores(y_test, pred, dataset, dataset.test, seed)

    baselines = {
        "unweighted": score(test_logits[0] >= 0),
        "theory_weight": score(test_logits[1] >= 0),
        "tuned_threshold": score(_sigmoid(test_logits[0]) >= threshold),
        "all_negative": score(np.zeros(n, dtype=bool)),
        "all_positive": score(np.ones(n, dtype=bool)),
    }
    test = score(test_logits[2] >= 0) if chosen_w is not None else None
    chosen = 2 if chosen_w is not None else 0
    return _Holdout(
        test,
        baselines,
        threshold,
        int(max(1, fit.epochs[chosen])),
        _sigmoid(test_logits[chosen]),
        fit.net.state_of(chosen),
        pre,
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
    best = choose(table)
    chosen_w = best["pos_weight"] if best else None
    hold = _evaluate_holdout(dataset, config, device, chosen_w, w_star, seed)
    model_state = preprocessor = None
    curves: dict[str, Any] = {}
    if best is not None:
        curves = _curves(dataset.y[dataset.test], hold.test_scores, best["threshold"])
        refit = spec.study["final_refit"]
        best["final_refit"] = refit
        best["epochs"] = hold.epochs
        if refit:
            model_state, preprocessor = _final_model(dataset, config, device, chosen_w, hold.epochs)
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

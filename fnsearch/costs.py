"""Cost arithmetic in plain NumPy: confusion counts, cost per example, savings, Bayes thresholds.

Predictions are 0/1 arrays; scores are probabilities in [0, 1]. Logits never reach this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CostMatrix",
    "bayes_threshold",
    "bootstrap_ci",
    "confusion_counts",
    "cost_per_example",
    "crossfit_threshold_costs",
    "example_costs",
    "paired_difference",
    "savings",
    "theory_weight",
    "tune_threshold",
]


@dataclass(frozen=True)
class CostMatrix:
    """Per-example costs of each outcome (constant costs are arrays of one repeated value)."""

    fn: np.ndarray
    fp: np.ndarray
    tp: np.ndarray
    tn: np.ndarray
    per_example: bool = False  # True when any cost comes from a column of the data

    def take(self, rows: np.ndarray) -> CostMatrix:
        """The costs of some rows."""
        return CostMatrix(
            self.fn[rows], self.fp[rows], self.tp[rows], self.tn[rows], self.per_example
        )

    def training_weights(self, y: np.ndarray) -> np.ndarray:
        """Cost-proportionate sample weights: positives by C_FN - C_TP, negatives by C_FP - C_TN,
        scaled to mean 1 so the loss keeps its usual size. With these the weighted loss already
        prices each row's mistakes, so the theory pos_weight on top of them is 1."""
        w = np.where(np.asarray(y, dtype=bool), self.fn - self.tp, self.fp - self.tn)
        return w / w.mean()

    def __len__(self) -> int:
        return int(self.fn.size)


def confusion_counts(y: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    """TP, FP, TN, FN of 0/1 predictions, by one bincount of ``2*y + pred``."""
    tn, fp, fn, tp = np.bincount(
        2 * np.asarray(y, dtype=np.int64) + np.asarray(pred, dtype=np.int64), minlength=4
    )
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


def example_costs(y: np.ndarray, pred: np.ndarray, costs: CostMatrix) -> np.ndarray:
    """The cost each example incurs under 0/1 predictions (broadcasts over leading axes of pred)."""
    y = np.asarray(y, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if_pos = np.where(y, costs.tp, costs.fp)
    if_neg = np.where(y, costs.fn, costs.tn)
    return np.where(pred, if_pos, if_neg)


def cost_per_example(y: np.ndarray, pred: np.ndarray, costs: CostMatrix) -> float:
    """Mean cost per example of 0/1 predictions."""
    return float(example_costs(y, pred, costs).mean())


def savings(cost: float, y: np.ndarray, costs: CostMatrix) -> float:
    """Correa Bahnsen savings: ``1 - cost / min(cost(all negative), cost(all positive))``."""
    n = y.size
    trivial = min(cost_per_example(y, np.zeros(n), costs), cost_per_example(y, np.ones(n), costs))
    return float(1.0 - cost / trivial) if trivial > 0 else 0.0


def theory_weight(y: np.ndarray, costs: CostMatrix) -> float:
    """Elkan's optimal pos_weight: ``sum(C_FN - C_TP) / sum(C_FP - C_TN)`` over the given rows.

    With constant costs this is ``(C_FN - C_TP) / (C_FP - C_TN)``; with per-example costs pass the
    training rows (DESIGN.md).
    """
    return float((costs.fn - costs.tp).sum() / (costs.fp - costs.tn).sum())


def bayes_threshold(costs: CostMatrix) -> np.ndarray:
    """Per-example Bayes threshold on a calibrated probability:
    ``(C_FP - C_TN) / ((C_FP - C_TN) + (C_FN - C_TP))``."""
    a = costs.fp - costs.tn
    return a / (a + (costs.fn - costs.tp))


def tune_threshold(y: np.ndarray, scores: np.ndarray, costs: CostMatrix) -> tuple[float, float]:
    """The threshold minimising mean cost on these rows, in one vectorised sweep.

    Candidate thresholds are the distinct scores (predict positive when ``score >= t``) and one
    above the largest (all negative). Ties keep the threshold nearest 0.5. Returns (threshold, cost).
    """
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], np.asarray(y, dtype=bool)[order]
    c = costs.take(order)
    # cost when the first k (highest scores) are predicted positive, k = 0..n
    gain = np.where(yy, c.tp - c.fn, c.fp - c.tn)  # change in cost when flipping to positive
    base = np.where(yy, c.fn, c.tn).sum()
    total = base + np.concatenate([[0.0], np.cumsum(gain)])
    # only cut where the score changes, so equal scores share a decision
    cut = np.concatenate([[True], s[1:] != s[:-1], [True]])
    ks = np.flatnonzero(cut)
    thresholds = np.concatenate([s, [np.nextafter(s[0], np.inf) if s.size else 1.0]])
    # threshold for "first k positive": the k-th score (s[k-1]); k = 0 means above the max
    t_of_k = np.where(ks == 0, thresholds[-1], s[np.maximum(ks - 1, 0)])
    costs_k = total[ks] / max(len(y), 1)
    best = np.flatnonzero(costs_k <= costs_k.min() + 1e-12)
    pick = best[np.argmin(np.abs(t_of_k[best] - 0.5))]
    return float(t_of_k[pick]), float(costs_k[pick])


def crossfit_threshold_costs(
    y: np.ndarray, scores: np.ndarray, costs: CostMatrix, groups: np.ndarray
) -> np.ndarray:
    """Each row's cost under a threshold tuned on the *other* groups' rows (cross-fitting).

    Tuning a threshold and scoring it on the same rows is optimistic; this is the honest
    out-of-sample cost of the "tune the threshold" policy, comparable with a weight's CV cost.
    """
    out = np.empty(y.size)
    for g in np.unique(groups):
        inside = groups == g
        t, _ = tune_threshold(y[~inside], scores[~inside], costs.take(np.flatnonzero(~inside)))
        rows = np.flatnonzero(inside)
        out[rows] = example_costs(y[rows], scores[rows] >= t, costs.take(rows))
    return out


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, seed: int = 0
) -> dict[str, float | list[float]]:
    """Mean of ``a - b`` over the same rows with its paired bootstrap interval (negative: a is
    cheaper). Pairing removes the shared row-to-row variation, so the interval is far narrower
    than the difference of two separate intervals."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    lo, hi = bootstrap_ci(d, seed=seed)
    return {"mean": float(d.mean()), "ci95": [lo, hi]}


def bootstrap_ci(
    values: np.ndarray, *, seed: int = 0, n_boot: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-example values.

    Above 100,000 rows the normal interval is used: the mean is then Gaussian to well under the
    bootstrap's own Monte-Carlo error, and resampling would need gigabytes of indices.
    """
    values = np.asarray(values, dtype=float)
    n = values.size
    alpha = (1 - level) / 2
    if n > 100_000:
        half = 1.959963984540054 * values.std(ddof=1) / np.sqrt(n)
        return float(values.mean() - half), float(values.mean() + half)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)

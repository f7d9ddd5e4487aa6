"""Quality benchmark: fnsearch with default settings against scikit-learn peers on paired splits.

    .venv/bin/python bench/quality.py                       # everything (about 25 minutes here)
    .venv/bin/python bench/quality.py --part german --splits 20
    .venv/bin/python bench/quality.py --part coverage --repeats 100

Each outer split is a stratified 80/20 split (seed = split number). fnsearch gets the 80% as its
data with only data, label, positive and costs set (defaults for everything else); its `predict`
model (refit on all of the 80%) decides the outer 20%. The peers are fitted on the same 80%, with
the same preprocessing (fnsearch's: median impute + standardise, one-hot). For each split the mean
paired difference (fnsearch minus peer, cost per example; peer minus fnsearch for savings) is
taken over the same outer rows; the table shows the mean over splits, its 95% t-interval, and in
how many splits fnsearch was better. "No worse" means the interval's upper end is <= 0.02.

Synthetic (fnsearch.synthetic: quadratic Bayes boundary, 10% positives, C_FN 10, C_FP 1): fnsearch
gets 4000 rows; its regret is its cost on a fresh 200,000-row sample over the exact Bayes cost.
Coverage: how often the report's 95% test interval covers the chosen model's cost on a fresh
200,000-row sample (with `final_refit = false`, so the interval and the fresh sample describe the
same model; 16 trials, one validation split, to keep 100 repeats affordable).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import StratifiedShuffleSplit, TunedThresholdClassifierCV

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fnsearch import tune
from fnsearch.costs import CostMatrix, bayes_threshold, example_costs, savings
from fnsearch.data import Preprocessor, map_labels, read_costs
from fnsearch.datasets import load_builtin
from fnsearch.predict import Predictor
from fnsearch.synthetic import FEATURES, bayes_cost, sample

PROBLEMS = {
    "german": {
        "builtin": "german_credit",
        "label": "risk",
        "positive": "bad",
        "cost": {"fn": 5, "fp": 1, "tp": 0, "tn": 0},
        "drop": [],
    },
    "breast": {
        "builtin": "breast_cancer",
        "label": "diagnosis",
        "positive": "malignant",
        "cost": {"fn": 10, "fp": 1, "tp": 0, "tn": 0},
        "drop": [],
    },
    "churn": {
        "builtin": "churn_tv",
        "label": "target",
        "positive": 1,
        "cost": {"fn": "C_FN", "fp": "C_FP", "tp": "C_TP", "tn": "C_TN"},
        "drop": ["id"],
    },
}
COST_COLUMNS = ["C_FN", "C_FP", "C_TP", "C_TN"]
OVERRIDES: dict = {}  # --set key=value, to try other settings than the defaults


def fnsearch_decisions(train: pd.DataFrame, test: pd.DataFrame, problem: dict, d: Path):
    path = d / "train.parquet"
    train.to_parquet(path, index=False)
    spec = {
        "data": {
            "path": str(path),
            "label": problem["label"],
            "positive": problem["positive"],
            "drop": problem["drop"],
        },
        "cost": problem["cost"],
    }
    start = time.perf_counter()
    result = tune(spec, overrides=OVERRIDES)
    seconds = time.perf_counter() - start
    predictor = Predictor(result.to_dict(), result.model_state, result.preprocessor)
    decisions = predictor.predict(test)["decision"].to_numpy().astype(bool)
    return decisions, seconds, result.best["policy"]


def features_of(frame: pd.DataFrame, problem: dict) -> pd.DataFrame:
    drop = {problem["label"], *problem["drop"]}
    if isinstance(problem["cost"]["fn"], str):
        drop |= set(COST_COLUMNS)
    return frame[[c for c in frame.columns if c not in drop]]


def peers(train, test, y_train, costs_train, problem) -> dict[str, np.ndarray]:
    """Decisions of the scikit-learn peers on the test rows."""
    pre = Preprocessor.fit(features_of(train, problem))
    xtr, xte = pre.transform(features_of(train, problem)), pre.transform(features_of(test, problem))
    out = {}
    if isinstance(problem["cost"]["fn"], str):  # per-example costs: Bayes threshold per row
        lr = LogisticRegression(max_iter=2000).fit(xtr, y_train)
        costs_test = read_costs(test, problem["cost"])
        out["LR + per-example Bayes threshold"] = lr.predict_proba(xte)[:, 1] >= bayes_threshold(
            costs_test
        )
        return out
    fn, fp = problem["cost"]["fn"], problem["cost"]["fp"]
    w = fn / fp
    lr = LogisticRegression(class_weight={1: w}, max_iter=2000).fit(xtr, y_train)
    out[f"LR class_weight={{1: {w:g}}}"] = lr.predict(xte).astype(bool)

    def neg_cost(y, pred):
        return -(fn * ((y == 1) & (pred == 0)) + fp * ((y == 0) & (pred == 1))).mean()

    tuned = TunedThresholdClassifierCV(
        LogisticRegression(max_iter=2000), scoring=make_scorer(neg_cost), random_state=0
    ).fit(xtr, y_train)
    out["LR + TunedThresholdClassifierCV"] = tuned.predict(xte).astype(bool)
    return out


def compare(name: str, n_splits: int) -> None:
    problem = PROBLEMS[name]
    frame = load_builtin(problem["builtin"])
    y, _, _ = map_labels(frame[problem["label"]], problem["positive"])
    costs = read_costs(frame, problem["cost"])
    per_example = isinstance(problem["cost"]["fn"], str)
    diffs: dict[str, list[float]] = {}
    rows, secs, policies = [], [], []
    splitter = StratifiedShuffleSplit(n_splits=n_splits, test_size=0.2, random_state=0)
    for s, (tr, te) in enumerate(splitter.split(np.zeros(len(y)), y)):
        train, test = frame.iloc[tr].reset_index(drop=True), frame.iloc[te].reset_index(drop=True)
        yte, cte = y[te], costs.take(te)
        with tempfile.TemporaryDirectory() as d:
            mine, seconds, policy = fnsearch_decisions(train, test, problem, Path(d))
        secs.append(seconds)
        policies.append(policy)
        mine_cost = example_costs(yte, mine, cte)
        row = {"split": s, "fnsearch": mine_cost.mean()}
        if per_example:
            row["fnsearch savings"] = savings(mine_cost.mean(), yte, cte)
        for peer, pred in peers(train, test, y[tr], costs.take(tr), problem).items():
            peer_cost = example_costs(yte, pred, cte)
            row[peer] = peer_cost.mean()
            if per_example:  # savings: peer minus fnsearch, so positive = fnsearch worse
                d = savings(peer_cost.mean(), yte, cte) - row["fnsearch savings"]
                row[f"{peer} savings"] = savings(peer_cost.mean(), yte, cte)
            else:
                d = float((mine_cost - peer_cost).mean())
            diffs.setdefault(peer, []).append(d)
        rows.append(row)
        print(
            f"  split {s:>2}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "split")
            + f"  ({seconds:.0f} s, {policy})",
            flush=True,
        )
    what = "savings (peer - fnsearch)" if per_example else "cost per example (fnsearch - peer)"
    print(f"{name}: {n_splits} paired 80/20 splits; paired difference in {what}")
    for peer, d in diffs.items():
        d = np.asarray(d)
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
        better = int((d < 0).sum())
        verdict = "no worse" if d.mean() + half <= 0.02 else "WORSE than allowed"
        print(
            f"  vs {peer:<36} mean {d.mean():+.4f}  95% [{d.mean() - half:+.4f}, "
            f"{d.mean() + half:+.4f}]  fnsearch better in {better}/{d.size}  -> {verdict}"
        )
    counts = pd.Series(policies).value_counts().to_dict()
    print(
        f"  fnsearch time per search: median {np.median(secs):.1f} s, max {max(secs):.1f} s; "
        f"policies chosen: {counts}"
    )


def synthetic(n_splits: int) -> None:
    problem = {"label": "y", "positive": 1, "cost": {"fn": 10, "fp": 1}, "drop": []}
    bayes = bayes_cost(10, 1)
    fresh = sample(200_000, seed=999)
    y = fresh["y"].to_numpy()
    regrets = []
    for s in range(n_splits):
        with tempfile.TemporaryDirectory() as d:
            mine, seconds, policy = fnsearch_decisions(
                sample(4000, seed=s), fresh, problem, Path(d)
            )
        cost = float((10 * (y == 1) * ~mine + 1 * (y == 0) * mine).mean())
        regrets.append(cost / bayes - 1)
        print(f"  seed {s}: cost {cost:.4f}, regret {regrets[-1]:.1%} ({seconds:.0f} s, {policy})")
    from sklearn.linear_model import LogisticRegression as LR

    train = sample(4000, seed=0)
    lr = LR(class_weight={1: 10}, max_iter=2000).fit(train[list(FEATURES)], train["y"])
    lin = lr.predict(fresh[list(FEATURES)]).astype(bool)
    lin_cost = float((10 * (y == 1) * ~lin + 1 * (y == 0) * lin).mean())
    print(
        f"synthetic: Bayes cost {bayes:.4f}; fnsearch regret mean {np.mean(regrets):.1%} "
        f"(max {np.max(regrets):.1%}) over {n_splits} training samples of 4000 rows; "
        f"linear LR (class_weight 10) regret {lin_cost / bayes - 1:.1%}"
    )


def coverage(repeats: int) -> None:
    fresh = sample(200_000, seed=999)
    y = fresh["y"].to_numpy()
    costs = CostMatrix(np.full(y.size, 10.0), np.ones(y.size), np.zeros(y.size), np.zeros(y.size))
    covered = 0
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.parquet"
            sample(4000, seed=1000 + r).to_parquet(path, index=False)
            result = tune(
                {
                    "data": {"path": str(path), "label": "y", "positive": 1},
                    "cost": {"fn": 10, "fp": 1},
                },
                overrides={
                    "study.final_refit": False,
                    "study.n_trials": 16,
                    "search.folds": 1,
                    "study.seed": r,
                },
            )
        predictor = Predictor(result.to_dict(), result.model_state, result.preprocessor)
        truth = example_costs(y, predictor.predict(fresh)["decision"].to_numpy(), costs).mean()
        lo, hi = result.test["ci95"]
        covered += lo <= truth <= hi
        if (r + 1) % 10 == 0:
            print(f"  {r + 1} repeats: covered {covered}", flush=True)
    print(
        f"coverage: the 95% test interval covered the fresh-sample cost in {covered}/{repeats} "
        f"repeats ({covered / repeats:.0%})"
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--part",
        choices=["german", "breast", "churn", "synthetic", "coverage", "all"],
        default="all",
    )
    p.add_argument("--splits", type=int, help="outer splits (default 20; 10 for churn)")
    p.add_argument("--repeats", type=int, default=100, help="coverage repeats")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    from fnsearch.spec import parse_override_value

    for item in args.set:
        key, _, value = item.partition("=")
        OVERRIDES[key] = parse_override_value(value)
    parts = (
        ["german", "breast", "churn", "synthetic", "coverage"]
        if args.part == "all"
        else [args.part]
    )
    for part in parts:
        start = time.perf_counter()
        if part == "synthetic":
            synthetic(args.splits or 5)
        elif part == "coverage":
            coverage(args.repeats)
        else:
            compare(part, args.splits or (10 if part == "churn" else 20))
        print(f"  ({time.perf_counter() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()

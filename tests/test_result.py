"""The result and the run folder: summary.json, trials.csv, model.pt, preprocessing.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fnsearch import tune
from fnsearch.costs import cost_per_example
from fnsearch.data import prepare_dataset
from fnsearch.models import Architecture, sequential
from fnsearch.result import POLICIES, TRIAL_COLUMNS, candidates, choose
from fnsearch.spec import load_spec

from .conftest import FAST

SPEC = {
    "study": {"name": "gc_result"},
    "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
    "cost": {"fn": 5, "fp": 1},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "gc"
    result = tune(SPEC, overrides=FAST, out=out)
    return result, out


def test_summary_json_is_to_dict_with_every_key(run):
    """Check that summary.json equals result.to_dict() and holds every DESIGN.md key."""
    result, out = run
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.to_dict()
    for key in (
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
    ):
        assert key in summary
    assert summary["schema_version"] == 1
    assert set(summary["versions"]) >= {"python", "torch", "optuna", "sklearn"}
    assert set(summary["data"]["rows"]) == {"train", "val", "test"}
    assert summary["data"]["positive_label"] == "bad"
    assert {"fn", "fp", "tp", "tn", "theory_weight"} <= set(summary["cost"])
    assert summary["cost"]["theory_weight"] == pytest.approx(5.0)
    best = summary["best"]
    assert {
        "policy",
        "pos_weight",
        "threshold",
        "val_cost_per_example",
        "val_cost_se",
        "plateau",
        "trial",
        "final_refit",
    } <= set(best)
    assert best["policy"] in POLICIES and best["rule"]
    searched = next(c for c in best["candidates"] if c["policy"] == "searched")
    assert best["plateau"][0] <= searched["pos_weight"] <= best["plateau"][1]
    assert [c["policy"] for c in best["candidates"]] == list(POLICIES)
    for section in [summary["test"], *summary["baselines"].values()]:
        assert {"cost_per_example", "ci95", "tp", "fp", "tn", "fn", "savings"} <= set(section)
        assert section["ci95"][0] <= section["cost_per_example"] <= section["ci95"][1]
    assert set(summary["baselines"]) == {
        "unweighted",
        "theory_weight",
        "tuned_threshold",
        "bayes_threshold",
        "all_negative",
        "all_positive",
    }
    for name, section in summary["baselines"].items():
        if name != best["policy"]:
            diff = section["chosen_minus_this"]
            assert diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
            gap = summary["test"]["cost_per_example"] - section["cost_per_example"]
            assert diff["mean"] == pytest.approx(gap)
    assert summary["trials"] == {"complete": 6, "pruned": 0, "failed": 0}
    assert summary["timing"]["device"] == "cpu" and summary["timing"]["seconds"] > 0


def table_of(weights, values, se=0.02, tuned=None, tuned_se=0.02):
    n = len(weights)
    return pd.DataFrame(
        {
            "number": range(n),
            "state": "complete",
            "pos_weight": weights,
            "value": values,
            "value_se": se,
            "tuned_threshold": 0.3,
            "tuned_value": tuned if tuned is not None else [v + 1 for v in values],
            "tuned_value_se": tuned_se,
            "epochs": "7;9;8",
        }
    )


def test_theory_weight_wins_when_within_one_standard_error():
    """Check that the one-SE rule keeps the theory weight when the searched minimum is within one
    standard error, and that the rule 'lowest' takes the minimum instead."""
    weights = np.geomspace(0.5, 50, 41)
    values = 0.5 + 0.01 * (np.log10(weights) - np.log10(8)) ** 2  # minimum at 8, w* = 5 close by
    table = table_of([5.0, 1.0, *weights], [0.5 + 0.01 * (np.log10(5 / 8)) ** 2, 0.6, *values])
    found, plateau = candidates(table, w_star=5.0, fallback_epochs=100)
    chosen, rule = choose(found)
    assert chosen.policy == "theory_weight" and chosen.pos_weight == 5.0 and chosen.trial == 0
    assert "within one standard error" in rule and plateau[0] <= 5.0 <= plateau[1]
    lowest, _ = choose(found, "lowest")
    assert lowest.policy == "searched" and 6 < lowest.pos_weight < 11
    assert chosen.epochs == 8  # the median of the trial's per-fold epochs


def test_the_search_wins_only_when_clearly_better():
    """Check that a searched weight more than one SE below every simpler policy is chosen."""
    weights = np.geomspace(0.5, 50, 41)
    values = 0.5 + 0.3 * (np.log10(weights) - np.log10(20)) ** 2
    table = table_of([5.0, 1.0, *weights], [0.5 + 0.3 * np.log10(4) ** 2, 0.7, *values], se=0.01)
    chosen, rule = choose(candidates(table, w_star=5.0, fallback_epochs=100)[0])
    assert chosen.policy == "searched" and 15 < chosen.pos_weight < 27
    assert "no simpler policy" in rule


def test_a_lucky_trial_does_not_beat_a_smooth_basin():
    """Check that the smoothed curve, not the single luckiest trial, picks the searched weight."""
    weights = np.geomspace(0.5, 50, 61)
    values = 0.5 + 0.3 * (np.log10(weights) - np.log10(3)) ** 2
    lucky = int(np.argmin(np.abs(weights - 30)))
    values[lucky] = 0.45  # one trial far from the basin got lucky
    table = table_of(weights, values)
    found, _ = candidates(table, w_star=5.0, fallback_epochs=100)
    searched = next(c for c in found if c.policy == "searched")
    assert 2 < searched.pos_weight < 4.5


def test_tuned_threshold_policy_uses_its_cross_fitted_value():
    """Check that w = 1 with a tuned threshold is chosen when its honest CV cost is lowest."""
    weights = np.geomspace(0.5, 50, 21)
    values = np.full(weights.size, 0.6)
    tuned = np.where(np.isclose(weights, 1.0), 0.5, 0.58)
    table = table_of([5.0, 1.0, *weights], [0.6, 0.6, *values], tuned=[0.58, 0.5, *tuned])
    chosen, _ = choose(candidates(table, w_star=5.0, fallback_epochs=100)[0])
    assert chosen.policy == "tuned_threshold" and chosen.pos_weight == 1.0
    assert chosen.threshold == 0.3


def test_trivial_baselines_match_the_cost_formula(run):
    """Check all-negative/all-positive test costs against the cost formula on the test rows."""
    result, _ = run
    ds = prepare_dataset(load_spec(SPEC))
    y = ds.y[ds.test]
    c = ds.costs.take(ds.test)
    assert result.baselines["all_positive"]["cost_per_example"] == pytest.approx(
        cost_per_example(y, np.ones_like(y), c)
    )
    assert result.baselines["all_negative"]["cost_per_example"] == pytest.approx(5 * y.mean())
    assert result.data["positives"] == ds.counts("positives")


def test_trials_csv_columns_and_types(run):
    """Check trials.csv: the DESIGN.md columns first, one row per trial, typed."""
    _, out = run
    table = pd.read_csv(out / "trials.csv")
    assert list(table.columns[: len(TRIAL_COLUMNS)]) == TRIAL_COLUMNS
    assert len(table) == 6 and table["number"].tolist() == list(range(6))
    assert pd.api.types.is_float_dtype(table["pos_weight"])
    assert pd.api.types.is_integer_dtype(table["fn"])
    assert (table["state"] == "complete").all()


def test_model_file_is_a_plain_state_dict(run):
    """Check model.pt loads with weights_only=True into torch.nn.Sequential."""
    result, out = run
    state = torch.load(out / "model.pt", weights_only=True)
    pre = json.loads((out / "preprocessing.json").read_text())
    n_in = len(pre["numeric"]) + sum(len(c["categories"]) for c in pre["categorical"])
    model = sequential(Architecture(n_in, tuple(result.spec["model"]["hidden"]), "relu"))
    model.load_state_dict(state)
    assert model(torch.zeros(2, n_in)).shape == (2, 1)


def test_run_folder_files(run):
    """Check every file DESIGN.md lists is in the run folder, with the permissions open() gives."""
    import os

    _, out = run
    mask = os.umask(0)
    os.umask(mask)
    for name in (
        "report.html",
        "summary.json",
        "trials.csv",
        "study.log",
        "model.pt",
        "preprocessing.json",
        "run.log",
    ):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
    assert "trials 6/6" in (out / "run.log").read_text()


def test_no_trial_completes():
    """Check that when every trial fails the result has null best and test, and says why."""
    result = tune(
        SPEC,
        overrides={
            **FAST,
            "search.low": 1e36,
            "search.high": 1e38,
            "model.lr": 10.0,
            "study.n_trials": 2,
        },
    )
    if result.trials["complete"]:
        pytest.skip("training did not diverge on this platform")
    assert result.best is None and result.test is None
    assert result.to_dict()["best"] is None
    assert result.baselines["unweighted"]["cost_per_example"] > 0


def test_without_threshold_tuning_only_weights_compete():
    """Check that tune_threshold = false leaves the threshold policies out of the choice."""
    weights = np.geomspace(0.5, 50, 21)
    table = table_of([5.0, 1.0, *weights], [0.6] * 23, tuned=[0.3] * 23)
    found, _ = candidates(table, w_star=5.0, fallback_epochs=100)
    assert choose(found)[0].policy == "tuned_threshold"
    assert choose(found, thresholds=False)[0].policy == "theory_weight"

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
from fnsearch.result import TRIAL_COLUMNS
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
    assert best["policy"] == "searched"
    assert best["plateau"][0] <= best["pos_weight"] <= best["plateau"][1]
    for section in [summary["test"], *summary["baselines"].values()]:
        assert {"cost_per_example", "ci95", "tp", "fp", "tn", "fn", "savings"} <= set(section)
        assert section["ci95"][0] <= section["cost_per_example"] <= section["ci95"][1]
    assert set(summary["baselines"]) == {
        "unweighted",
        "theory_weight",
        "tuned_threshold",
        "all_negative",
        "all_positive",
    }
    assert summary["trials"] == {"complete": 6, "pruned": 0, "failed": 0}
    assert summary["timing"]["device"] == "cpu" and summary["timing"]["seconds"] > 0


def test_best_is_the_lowest_validation_cost(run):
    """Check that the chosen trial has the lowest validation value (policy 'searched')."""
    result, _ = run
    table = result.trials_table
    assert result.best["val_cost_per_example"] == table["value"].min()
    assert table.loc[result.best["trial"], "pos_weight"] == result.best["pos_weight"]


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

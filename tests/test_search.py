"""The Optuna study: first trials, reproducibility, resuming, failures, population size."""

from __future__ import annotations

import optuna
import pytest

from fnsearch import tune
from fnsearch.errors import StorageError
from fnsearch.search import population_size, weight_range
from fnsearch.spec import load_spec

from .conftest import FAST

SPEC = {
    "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
    "cost": {"fn": 5, "fp": 1},
}


def test_theory_weight_and_one_are_the_first_trials():
    """Check that trial 0 is w* = 5 and trial 1 is w = 1."""
    result = tune(SPEC, overrides=FAST)
    table = result.trials_table
    assert table.loc[0, "pos_weight"] == pytest.approx(5.0)
    assert table.loc[1, "pos_weight"] == pytest.approx(1.0)
    assert result.trials["complete"] == 6


def test_same_seed_same_trials():
    """Check that two runs with one seed sample the same weights and values."""
    a = tune(SPEC, overrides=FAST).trials_table
    b = tune(SPEC, overrides=FAST).trials_table
    assert a["pos_weight"].tolist() == b["pos_weight"].tolist()
    assert a["value"].tolist() == b["value"].tolist()


def test_trial_values_do_not_depend_on_population_size():
    """Check that a weight's validation cost is the same whichever population trained it."""
    one = tune(SPEC, overrides={**FAST, "search.population": 1}).trials_table
    three = tune(SPEC, overrides={**FAST, "search.population": 3}).trials_table
    # both runs start with w* and w = 1
    assert one.loc[:1, "value"].tolist() == pytest.approx(three.loc[:1, "value"].tolist(), abs=1e-9)


def test_resume_continues_to_the_total(tmp_path):
    """Check that a rerun with a larger --trials adds trials up to the new total."""
    out = tmp_path / "run"
    tune(SPEC, overrides=FAST, out=out)
    result = tune(SPEC, overrides=FAST, out=out, n_trials=9)
    assert result.trials["complete"] == 9
    assert result.timing["trials_run"] == 3
    numbers = result.trials_table["number"].tolist()
    assert numbers == list(range(9))


def test_a_different_spec_is_refused_on_resume(tmp_path):
    """Check that resuming a run folder with another model is refused, not mixed in."""
    out = tmp_path / "run"
    tune(SPEC, overrides=FAST, out=out)
    with pytest.raises(StorageError, match="made with a different spec"):
        tune(SPEC, overrides={**FAST, "model.hidden": [4]}, out=out)


def test_diverging_weights_fail_and_the_study_goes_on():
    """Check that a weight whose loss goes non-finite fails with its reason, the rest complete."""
    result = tune(
        SPEC,
        overrides={
            **FAST,
            "search.low": 1e30,
            "search.high": 1e38,
            "model.lr": 10.0,
            "study.n_trials": 4,
        },
    )
    table = result.trials_table
    failed = table[table["state"] == "fail"]
    assert len(failed) >= 1
    assert failed["fail_reason"].str.contains("non-finite").all()
    assert result.trials["failed"] == len(failed)


def test_sqlite_storage_url(tmp_path):
    """Check that an sqlite:/// URL holds a normal Optuna study."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    tune(SPEC, overrides=FAST, storage=url)
    study = optuna.load_study(study_name="fnsearch", storage=url)
    assert len(study.trials) == 6
    assert "spec" in study.user_attrs


def test_population_and_range_rules():
    """Check population = n_trials // 4 within [1, 64] and the auto weight range."""
    spec = load_spec(SPEC)
    assert [population_size(spec, n) for n in (1, 8, 64, 1000)] == [1, 2, 16, 64]
    assert weight_range(spec, 5.0, 2.33) == (0.1, 50.0)
    assert weight_range(spec, 0.5, 30.0) == (0.05, 300.0)


def test_per_example_costs_train_as_sample_weights(tmp_path, german):
    """Check that cost columns give cost-proportionate sample weights (5 : 1 here, mean 1) and a
    theory weight of 1, and that the trial is scored with each row's own costs."""
    from fnsearch.api import _Plan
    from fnsearch.search import Evaluator

    path = tmp_path / "g.parquet"
    german.assign(cfn=5.0, cfp=1.0).to_parquet(path)
    spec = load_spec(
        {
            "data": {"path": str(path), "label": "risk", "positive": "bad"},
            "cost": {"fn": "cfn", "fp": "cfp"},
        },
        FAST,
    )
    plan = _Plan.make(spec)
    assert plan.w_star == 1.0
    split = Evaluator(plan.dataset, plan.config, plan.device).splits[0]
    sw, y = split.sample_weight.numpy(), split.y.numpy()
    assert sw.mean() == pytest.approx(1.0, rel=1e-5)
    assert sw[y == 1] == pytest.approx(5 * sw[y == 0][0], rel=1e-5)
    result = tune(spec)
    assert result.cost["theory_weight"] == 1.0 and result.best is not None


def test_repeats_average_rows_over_initialisations():
    """Check that repeats = 2 stores one epoch count per (repeat, fold), a cross-fitted threshold
    cost per trial, and values that differ from one repeat's."""
    one = tune(SPEC, overrides=FAST).trials_table
    two = tune(SPEC, overrides={**FAST, "search.repeats": 2}).trials_table
    assert all(len(e.split(";")) == 2 for e in two["epochs"])
    assert two["tuned_value"].notna().all() and two["tuned_value_se"].gt(0).all()
    assert one.loc[0, "value"] != two.loc[0, "value"]


def test_failures_of_stopped_runs_and_dead_workers_do_not_count():
    """Check that max_failed counts only failures that say something about a weight, not trials
    interrupted by Ctrl-C or lost with their worker."""
    from optuna.trial import TrialState

    from fnsearch.search import failed_count
    from fnsearch.workers import INTERRUPTED, WORKER_DIED

    study = optuna.create_study()
    for reason in (INTERRUPTED, f"{WORKER_DIED} (worker h pid 1 silent for 31 s)", "diverged"):
        t = study.ask()
        t.set_user_attr("fail_reason", reason)
        study.tell(t, state=TrialState.FAIL)
    assert failed_count(study) == 1


def test_a_worker_stops_at_max_failed_and_exits_3(tmp_path, capsys):
    """Check that a worker whose trials all fail stops at [study] max_failed, says so, and exits 3
    (no trial completed)."""
    from .conftest import german_spec, run_cli

    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ["--set", "search.low=1e36", "--set", "search.high=1e38", "--set", "model.lr=10.0"]
    code, out, _ = run_cli(
        capsys,
        "worker",
        german_spec(tmp_path),
        "--storage",
        url,
        "--set",
        "study.max_failed=3",
        *args,
    )
    assert code == 3
    assert "0 complete, 3 failed; stopped after 3 failed trials ([study] max_failed)" in out

"""The run folder read by other tools: the study is a plain Optuna study, trials.csv a plain table."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from fnsearch.cli import main

from .conftest import german_spec, run_cli


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """A CLI run in which some trials complete and some fail (weights past float32's range)."""
    tmp = tmp_path_factory.mktemp("interop")
    out = tmp / "run"
    spec = german_spec(tmp)
    args = ["--trials", "8", "--set", "search.low=1.0", "--set", "search.high=1e38", "-q"]
    assert main(["search", str(spec), "--out", str(out), *args]) == 0
    return out


def _plain_optuna(out) -> optuna.Study:
    # Exactly what a user (or optuna-dashboard) does with the run folder's journal file.
    storage = JournalStorage(JournalFileBackend(str(out / "study.log")))
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def test_the_study_is_a_plain_optuna_study(mixed_run):
    """Check that Optuna alone loads the run folder's study.log, with every trial and value."""
    study = _plain_optuna(mixed_run)
    states = {t.state for t in study.trials}
    assert states == {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL}
    assert study.best_trial.params["pos_weight"] > 0
    assert study.direction == optuna.study.StudyDirection.MINIMIZE


def test_trials_csv_loads_in_pandas_one_typed_row_per_trial(mixed_run):
    """Check that trials.csv loads with plain pandas: one row per study trial, in trial order,
    typed columns, and values equal to the study's."""
    study = _plain_optuna(mixed_run)
    table = pd.read_csv(mixed_run / "trials.csv")
    assert table["number"].tolist() == [t.number for t in study.trials]
    assert pd.api.types.is_integer_dtype(table["number"])
    assert pd.api.types.is_string_dtype(table["state"])
    for col in ("pos_weight", "threshold", "value", "value_se", "tp", "fp", "tn", "fn", "seconds"):
        assert pd.api.types.is_numeric_dtype(table[col]), col
    assert table["state"].tolist() == [t.state.name.lower() for t in study.trials]
    assert table["pos_weight"].tolist() == pytest.approx(
        [t.params["pos_weight"] for t in study.trials]
    )
    done = table[table["state"] == "complete"]
    values = [t.value for t in study.trials if t.value is not None]
    assert done["value"].tolist() == pytest.approx(values)
    failed = table[table["state"] == "fail"]
    assert len(failed) and done["value"].notna().all() and failed["value"].isna().all()
    reasons = [t.user_attrs["fail_reason"] for t in study.trials if t.state.name == "FAIL"]
    assert failed["fail_reason"].tolist() == reasons

    # nullable dtypes keep counts as integers even where failed trials leave them empty
    typed = pd.read_csv(mixed_run / "trials.csv", dtype_backend="numpy_nullable")
    for col in ("tp", "fp", "tn", "fn"):
        assert str(typed[col].dtype) == "Int64", col
    packed = [t.user_attrs["fnsearch"]["fn"] for t in study.trials if t.value is not None]
    assert typed.loc[typed["state"] == "complete", "fn"].tolist() == packed


def test_a_sqlite_study_is_plain_optuna_too(tmp_path, capsys):
    """Check that a study kept in SQLite (--storage sqlite:///...) loads with Optuna alone."""
    db = tmp_path / "study.db"
    code, _, _ = run_cli(
        capsys,
        "search",
        german_spec(tmp_path),
        "--storage",
        f"sqlite:///{db}",
        "--out",
        tmp_path / "run",
        "-q",
    )
    assert code == 0
    study = optuna.load_study(study_name="gc_test", storage=f"sqlite:///{db}")
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(table) == len(study.trials) == 6

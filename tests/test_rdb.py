"""Database storages: credentials never shown, retries across a server restart, the SQLite guard."""

from __future__ import annotations

import json
import logging
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from fnsearch import tune
from fnsearch.errors import StorageError
from fnsearch.rdb import RETRY_DELAYS, connect
from fnsearch.storage import make_storage
from fnsearch.workers import INTERRUPTED

from .conftest import FAST, german_spec, run_cli

DIST = {"pos_weight": FloatDistribution(0.1, 100, log=True)}


def test_a_storage_password_is_never_shown_or_written(tmp_path, capsys, monkeypatch, pg_server):
    """Check that the password of a PostgreSQL URL (given by FNSEARCH_STORAGE or --storage) is in
    no output of worker, search and report, in no file of the run folders (summary.json with its
    spec, trials.csv, run.log, report.html), and not in what the study stores - and that the URL is
    shown masked; also when the database or the password is wrong."""
    url = pg_server.new_database()
    secret = pg_server.password
    spec = german_spec(tmp_path)
    outputs = []
    monkeypatch.setenv("FNSEARCH_STORAGE", url)
    code, out, err = run_cli(capsys, "worker", spec, "--trials", "4")
    assert code == 0, err
    outputs += [out, err]
    monkeypatch.delenv("FNSEARCH_STORAGE")
    code, out, err = run_cli(capsys, "search", spec, "--storage", url, "--out", tmp_path / "run")
    assert code == 0, err
    outputs += [out, err]
    code, out, err = run_cli(
        capsys, "report", "--storage", url, "--study", "gc_test", "--out", tmp_path / "rebuilt"
    )
    assert code == 0, err
    outputs += [out, err]
    for bad in (url.rsplit("/", 1)[0] + "/nosuchdb", pg_server.url("postgres", "wrong-" + secret)):
        code, out, err = run_cli(capsys, "worker", spec, "--storage", bad)
        assert code == 2 and err.count("\n") == 1 and "postgresql://fnsearch:***@" in err, err
        outputs += [out, err]
    files = [p for d in ("run", "rebuilt") for p in (tmp_path / d).iterdir() if p.is_file()]
    assert {"summary.json", "trials.csv", "run.log", "report.html"} <= {p.name for p in files}
    texts = {str(p): p.read_text(errors="replace") for p in files if p.suffix != ".pt"}
    study = optuna.load_study(study_name="gc_test", storage=url)
    texts["study"] = json.dumps(
        [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
        + [[t.user_attrs, t.system_attrs] for t in study.trials],
        default=str,
    )
    for name, text in [*texts.items(), *((f"output {i}", o) for i, o in enumerate(outputs))]:
        assert secret not in text, f"the password is in {name}"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["spec"]["study"]["storage"] == url.replace(secret, "***")
    assert url.replace(secret, "***") in (tmp_path / "run" / "report.html").read_text()


def test_storage_calls_survive_a_server_restart(pg_server, caplog):
    """Check that storage calls made while the server is down wait for it with retries (one
    warning per retry, the password masked) and then succeed - a worker's and the reading one of
    `fnsearch report` - and that the cross-process lock reconnects after its connection was cut."""
    url = pg_server.new_database()
    with connect(url) as database:
        study = optuna.create_study(storage=database.storage, study_name="r")
        study.tell(study.ask(DIST), 1.0)
        reader = make_storage(url, None)
        with caplog.at_level(logging.WARNING, logger="fnsearch"):
            restarting = pg_server.restart(down_seconds=1.5)
            read = optuna.load_study(study_name="r", storage=reader).trials
            with database.lock("ask:r"):
                study.tell(study.ask(DIST), 2.0)
        assert restarting.wait(timeout=60) == 0
    assert [t.value for t in read] == [1.0]
    assert [t.value for t in optuna.load_study(study_name="r", storage=url).trials] == [1.0, 2.0]
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retries and all("fnsearch:***@" in m and pg_server.password not in m for m in retries)


def test_a_wrong_password_fails_at_once(pg_server, caplog):
    """Check that opening a storage with a wrong password is one masked StorageError at once, with
    no retries (those are for a connection lost during a run)."""
    start = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="fnsearch"),
        pytest.raises(StorageError, match=r"cannot open storage postgresql://fnsearch:\*\*\*@"),
        connect(pg_server.url("postgres", "not-it")),
    ):
        pass
    assert not [r for r in caplog.records if "retry" in r.getMessage()]
    assert time.monotonic() - start < sum(RETRY_DELAYS) / 4


def test_the_short_postgres_scheme_works(pg_server):
    """Check that a postgres:// URL (libpq's spelling) is taken as postgresql://."""
    url = pg_server.new_database().replace("postgresql://", "postgres://")
    result = tune(
        {
            "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
            "cost": {"fn": 5, "fp": 1},
        },
        overrides={**FAST, "study.n_trials": 2},
        storage=url,
    )
    assert result.trials["complete"] == 2


def test_sqlite_refuses_a_second_process_and_points_to_postgresql(tmp_path, capsys):
    """Check that a worker on an SQLite file another fnsearch process holds exits 2 with one line
    pointing to PostgreSQL, and runs once the file is free."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = german_spec(tmp_path)
    with connect(url):
        code, _, err = run_cli(capsys, "worker", spec, "--storage", url, "--trials", "2")
        assert code == 2 and err.count("\n") == 1
        assert "in use by another fnsearch process" in err and "PostgreSQL" in err
        code, _, err = run_cli(capsys, "search", spec, "--storage", url, "--out", tmp_path / "r")
        assert code == 2 and "in use by another fnsearch process" in err
        assert not (tmp_path / "r").exists()
    code, out, err = run_cli(capsys, "worker", spec, "--storage", url, "--trials", "2")
    assert code == 0, err
    assert "study holds 2 finished trial(s)" in out


def test_sqlite_resumes_the_trials_a_killed_run_left_running(tmp_path):
    """Check that a trial a dead process left RUNNING in an SQLite study is failed as interrupted
    when the next run starts, and its weight runs again (the guard makes that run the only one)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = german_spec(tmp_path)
    tune(spec, overrides={"study.n_trials": 2}, storage=url)
    left = optuna.load_study(study_name="gc_test", storage=url).ask(DIST)  # its process "died"
    w = left.params["pos_weight"]
    result = tune(spec, overrides={"study.n_trials": 4}, storage=url)
    assert result.trials == {"complete": 4, "pruned": 0, "failed": 1}
    study = optuna.load_study(study_name="gc_test", storage=url)
    dead = study.trials[left.number]
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"] == INTERRUPTED
    assert [t.params["pos_weight"] for t in study.trials if t.state.name == "COMPLETE"].count(
        w
    ) == 1

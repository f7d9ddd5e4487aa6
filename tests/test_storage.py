"""The run folder's journal file, written behind one round at a time."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution

from fnsearch.storage import STUDY_FILE, make_storage, write_behind

DIST = {"pos_weight": FloatDistribution(0.1, 100, log=True)}


def round_of(study, k, fail_last=False):
    trials = [study.ask(DIST) for _ in range(k)]
    for i, t in enumerate(trials):
        t.set_user_attr("fnsearch", {"fn": i, "epochs": [3, 4]})
        if fail_last and i == k - 1:
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(t, t.params["pos_weight"] / 10)


def snapshot(study):
    return [(t.number, t.state, t.params, t.value, t.user_attrs) for t in study.get_trials()]


def test_held_writes_are_readable_and_reach_the_file_at_the_end(tmp_path):
    """Check that inside a round this process sees its writes, the file gets them at the end, and a
    fresh reader of the file sees exactly what the writer saw."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")
    path = tmp_path / STUDY_FILE
    for r in range(3):
        before = path.read_bytes()
        with write_behind(study):
            round_of(study, 5, fail_last=r == 1)
            assert len(study.get_trials()) == 5 * (r + 1)  # held writes are visible here
            assert path.read_bytes() == before  # and not yet in the file
        assert len(path.read_bytes()) > len(before)
    fresh = optuna.load_study(study_name="s", storage=make_storage(None, tmp_path))
    assert snapshot(fresh) == snapshot(study)
    assert [t.number for t in fresh.trials] == list(range(15))


def test_an_error_mid_round_still_writes_what_was_done(tmp_path):
    """Check that a round left by an exception flushes its writes (the asked trial stays RUNNING,
    for the resume logic to fail and requeue)."""
    study = optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")
    with pytest.raises(KeyboardInterrupt), write_behind(study):
        study.ask(DIST)
        raise KeyboardInterrupt
    fresh = optuna.load_study(study_name="s", storage=make_storage(None, tmp_path))
    assert [t.state for t in fresh.trials] == [optuna.trial.TrialState.RUNNING]


def test_other_storages_write_through(tmp_path):
    """Check that write_behind is a no-op for memory and RDB storages."""
    for storage in (make_storage(None, None), make_storage(f"sqlite:///{tmp_path / 'x.db'}", None)):
        study = optuna.create_study(storage=storage)
        with write_behind(study):
            round_of(study, 2)
        assert len(study.trials) == 2


def test_a_run_folder_in_use_is_refused(tmp_path):
    """Check that a second search on a run folder another process holds is a clear error, and that
    the lock goes with its holder."""
    from fnsearch import tune
    from fnsearch.errors import StorageError
    from fnsearch.storage import run_folder_lock

    from .conftest import FAST, german_spec

    run = tmp_path / "run"
    run.mkdir()
    with run_folder_lock(run):
        with pytest.raises(StorageError, match="in use by another fnsearch search"):
            tune(german_spec(tmp_path), overrides=FAST, out=run)
        assert not (run / STUDY_FILE).exists()
    tune(german_spec(tmp_path), overrides={**FAST, "study.n_trials": 2}, out=run)  # free again
    assert (run / STUDY_FILE).exists()


def test_a_torn_last_entry_is_dropped_and_the_study_resumes(tmp_path):
    """Check that a journal cut mid-entry loses only that entry, and appends after it stay
    readable; a complete journal is left byte for byte."""
    from fnsearch.storage import drop_torn_tail

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")
    round_of(study, 3)
    path = tmp_path / STUDY_FILE
    whole = path.read_bytes()
    drop_torn_tail(tmp_path)
    assert path.read_bytes() == whole
    path.write_bytes(whole[:-25])  # the last entry, cut short
    drop_torn_tail(tmp_path)
    assert path.read_bytes() == whole[: whole[:-25].rfind(b"\n") + 1]
    study = optuna.load_study(study_name="s", storage=make_storage(None, tmp_path))
    round_of(study, 2)
    again = optuna.load_study(study_name="s", storage=make_storage(None, tmp_path))
    assert len(again.get_trials()) == 5


def test_a_damaged_journal_is_a_storage_error(tmp_path):
    """Check that a line that is not a journal entry gives StorageError naming the file."""
    from fnsearch.errors import StorageError

    (tmp_path / STUDY_FILE).write_text('garbage\n{"op_code": 0}\n')
    with pytest.raises(StorageError, match=r"study\.log is damaged.*move it away"):
        optuna.create_study(storage=make_storage(None, tmp_path), study_name="s")

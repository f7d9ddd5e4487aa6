"""Several workers on one study: exact totals, killed workers, simultaneous starts, resuming.

The multi-worker cases run real ``python -m fnsearch worker`` processes against the session's
throwaway PostgreSQL server; the watcher's rules are checked in-process on Optuna's own storages.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from fnsearch.workers import (
    INTERRUPTED,
    RECORD_PREFIX,
    WORKER_DIED,
    Heartbeat,
    Watcher,
    give_up,
    shielded,
)

from .conftest import ROOT, run_cli

DIST = {"pos_weight": FloatDistribution(0.1, 100, log=True)}
NAME = "shared"


def worker_spec(
    tmp_path: Path, *, n_trials: int, epochs: int, population: int = 2, batch_size: int = 8
) -> Path:
    """German credit, one split, a tiny MLP, one thread; ``epochs`` sets how long a round trains
    (minibatches of 8 make each epoch ~75 steps, so 150 epochs is about a second). Heartbeats
    every 2 s: a dead worker is noticed after 6 s, and a live one on a loaded machine is never
    taken for dead."""
    path = tmp_path / "worker.toml"
    path.write_text(
        f"""
[study]
name = "{NAME}"
n_trials = {n_trials}
heartbeat = 2
[data]
path = "builtin:german_credit"
label = "risk"
positive = "bad"
[cost]
fn = 5
fp = 1
[search]
folds = 1
population = {population}
[model]
epochs = {epochs}
patience = 0
hidden = [8]
batch_size = {batch_size}
threads = 1
""",
        encoding="utf-8",
    )
    return path


def start(tmp_path: Path, tag: str, *args: str | Path) -> subprocess.Popen[str]:
    """``python -m fnsearch ARGS`` in the background, its output in files (a pipe could fill)."""
    out = open(tmp_path / f"{tag}.out", "w")  # noqa: SIM115 - closed with the process by finish()
    err = open(tmp_path / f"{tag}.err", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "fnsearch", *map(str, args)],
        stdout=out,
        stderr=err,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    proc.files = (out, err)  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen[str], tmp_path: Path, tag: str, timeout: float = 120):
    """Wait for a process; returns (exit code, stdout, stderr)."""
    code = proc.wait(timeout=timeout)
    for f in proc.files:  # type: ignore[attr-defined]
        f.close()
    return code, (tmp_path / f"{tag}.out").read_text(), (tmp_path / f"{tag}.err").read_text()


@functools.cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(url)  # one engine per database, however often tests poll


def load(url: str) -> optuna.Study:
    """The study as stored now (a fresh cache each time)."""
    return optuna.load_study(study_name=NAME, storage=_storage(url))


def records(study: optuna.Study) -> dict[str, dict]:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {k: v for k, v in attrs.items() if k.startswith(RECORD_PREFIX)}


def running_trials_of(url: str, pid: int) -> list[int]:
    """Ids of the RUNNING trials the worker with this pid has claimed (empty before it starts)."""
    try:
        study = load(url)
    except KeyError:  # the study does not exist yet
        return []
    claimed = {t for r in records(study).values() if r["pid"] == pid for t in r["trials"]}
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t._trial_id for t in running if t._trial_id in claimed]


def wait_for(check, timeout: float = 90, every: float = 0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout} s")


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


# --- real workers on PostgreSQL ---------------------------------------------------------------


def test_three_workers_finish_exactly_n_distinct_trials(tmp_path, pg_url):
    """Check that three worker processes on one study end with exactly N complete trials, numbered
    0..N-1, with distinct weights (each worker samples its own), the theory weight and w = 1 first,
    and every worker exiting 0 after recording that it left."""
    n = 12
    spec = worker_spec(tmp_path, n_trials=n, epochs=40)
    procs = [start(tmp_path, f"w{i}", "worker", spec, "--storage", pg_url) for i in range(3)]
    results = [finish(p, tmp_path, f"w{i}") for i, p in enumerate(procs)]
    for code, out, err in results:
        assert code == 0, err
        assert f"study holds {n} finished trial(s); {n} complete, 0 failed" in out
    study = load(pg_url)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(n))
    assert states(study) == ["COMPLETE"] * n
    weights = [t.params["pos_weight"] for t in trials]
    assert weights[:2] == [5.0, 1.0]
    assert len(set(weights)) == n
    recs = records(study)
    assert len(recs) == 3 and all(r["done"] for r in recs.values())


def test_a_worker_killed_mid_round_loses_nothing(tmp_path, pg_url):
    """Check that when one of three workers is SIGKILLed while its trials run, the others fail
    those trials (the worker died), run each weight again exactly once, and the study ends with N
    complete trials and none running."""
    n = 8
    spec = worker_spec(tmp_path, n_trials=n, epochs=150)
    procs = [start(tmp_path, f"w{i}", "worker", spec, "--storage", pg_url) for i in range(3)]
    victim = procs[0]
    orphans = wait_for(lambda: running_trials_of(pg_url, victim.pid))
    victim.kill()
    assert finish(victim, tmp_path, "w0")[0] == -signal.SIGKILL
    study = load(pg_url)
    by_id = {t._trial_id: t for t in study.get_trials(deepcopy=False)}
    # The kill came mid-round: its trials were still running when it died.
    assert {by_id[i].state for i in orphans} == {TrialState.RUNNING}
    lost = {by_id[i].number: by_id[i].params["pos_weight"] for i in orphans}
    for i, p in enumerate(procs[1:], start=1):
        code, _, err = finish(p, tmp_path, f"w{i}")
        assert code == 0, err
    study = load(pg_url)
    trials = study.get_trials(deepcopy=False)
    assert TrialState.RUNNING not in {t.state for t in trials}
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == n
    failed = {t.number: t for t in trials if t.state == TrialState.FAIL}
    assert set(failed) == set(lost)
    assert all(t.user_attrs["fail_reason"].startswith(WORKER_DIED) for t in failed.values())
    done = [t.params["pos_weight"] for t in trials if t.state == TrialState.COMPLETE]
    for number, w in lost.items():
        assert done.count(w) == 1, f"the weight of trial {number} ran {done.count(w)} times"
    assert len({t.number for t in trials}) == len(trials)


# What `fnsearch worker` does, with a barrier between the data preparation and the storage open
# (the moment that races), so every process opens the database within microseconds of the others.
SIMULTANEOUS = """
import contextlib, sys, time, torch
from fnsearch.api import _Plan
from fnsearch.spec import load_spec
spec, urls = sys.argv[1], sys.argv[2:]
torch.set_num_threads(1)
for url in urls:
    plan = _Plan.make(load_spec(spec, storage=url))
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    while time.time() < start:
        pass
    with contextlib.ExitStack() as held:
        study, crew = plan.join(held, None)
        plan.search(study, None, crew)
"""


def test_workers_starting_at_the_same_moment_create_one_study(tmp_path, pg_server):
    """Check that three processes opening one database at the same instant all succeed, on an empty
    database (Optuna's tables made once) and on one with tables but no study (the study made, and
    the theory weight and w = 1 enqueued, once), each study ending with exactly its total."""
    n = 4
    spec = worker_spec(tmp_path, n_trials=n, epochs=2, population=1, batch_size=256)
    urls = [pg_server.new_database() for _ in range(2)]
    for url in urls[1:]:
        optuna.storages.RDBStorage(url).engine.dispose()  # tables made, no study yet
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SIMULTANEOUS, str(spec), *urls],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(3)
    ]
    for _ in urls:
        for p in procs:  # every process is at the barrier, imports and previous round done
            assert p.stdout.readline() == "ready\n", p.communicate()[1]
        go = f"{time.time() + 0.2}\n"
        for p in procs:
            p.stdin.write(go)
            p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    for url in urls:
        assert optuna.get_all_study_names(url) == [NAME]
        study = load(url)
        assert states(study) == ["COMPLETE"] * n
        weights = [t.params["pos_weight"] for t in study.get_trials(deepcopy=False)]
        assert weights[:2] == [5.0, 1.0] and weights.count(5.0) == 1 and weights.count(1.0) == 1
        assert study.user_attrs["fingerprint"]


def test_ctrl_c_and_sigterm_stop_cleanly_and_a_rerun_resumes(tmp_path, pg_url, capsys):
    """Check that SIGINT, then SIGTERM, stop a worker mid-round with exit 130 and one line on how
    to resume, leaving no trial running and the stopped weights queued; rerunning (here `search`
    with the same storage) completes the study to exactly its total and writes the run folder."""
    n = 6
    spec = worker_spec(tmp_path, n_trials=n, epochs=150)
    stopped: dict[int, float] = {}
    for tag, sig in (("int", signal.SIGINT), ("term", signal.SIGTERM)):
        proc = start(tmp_path, tag, "worker", spec, "--storage", pg_url)
        wait_for(lambda p=proc: running_trials_of(pg_url, p.pid))
        proc.send_signal(sig)
        code, _, err = finish(proc, tmp_path, tag)
        assert code == 130, err
        assert err.splitlines()[-1] == (
            "fnsearch: interrupted; finished trials are stored - rerun the same command to resume"
        )
        assert "Traceback" not in err
        study = load(pg_url)
        trials = study.get_trials(deepcopy=False)
        assert TrialState.RUNNING not in {t.state for t in trials}
        now = {
            t.number: t.params["pos_weight"]
            for t in trials
            if t.state == TrialState.FAIL and t.number not in stopped
        }
        assert now and all(study.trials[i].user_attrs["fail_reason"] == INTERRUPTED for i in now)
        stopped.update(now)
        queued = [
            t.system_attrs["fixed_params"]["pos_weight"]
            for t in trials
            if t.state == TrialState.WAITING
        ]
        assert sorted(queued) == sorted(now.values())
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "search", spec, "--storage", pg_url, "--out", run, "-q")
    assert code == 0, err
    study = load(pg_url)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert len(complete) == n and set(states(study)) == {"COMPLETE", "FAIL"}
    done = [t.params["pos_weight"] for t in complete]
    assert all(done.count(w) == 1 for w in stopped.values())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trials"]["complete"] == n and summary["trials"]["failed"] == len(stopped)


# --- the rules, in-process --------------------------------------------------------------------


def fake_record(study: optuna.Study, key: str, beat: int, trials: list[int]) -> None:
    study._storage.set_study_system_attr(
        study._study_id,
        RECORD_PREFIX + key,
        {"host": "elsewhere", "pid": 1, "beat": beat, "trials": trials, "done": False},
    )


def test_watcher_waits_a_grace_period_by_its_own_clock():
    """Check that a worker's trials are given up only after its counter stood still for the grace
    period as this process saw it (however old the record), and never while the counter moves."""
    study = optuna.create_study()
    t = study.ask(DIST)
    fake_record(study, "a", 7, [t._trial_id])
    watcher = Watcher(0.3, RECORD_PREFIX + "me")
    assert watcher.dead(study, set()) == []  # first sight: alive, whatever its age
    for beat in (8, 9, 10):
        time.sleep(0.15)
        fake_record(study, "a", beat, [t._trial_id])
        assert watcher.dead(study, set()) == []
    time.sleep(0.4)
    [(trial, reason)] = watcher.dead(study, set())
    assert trial.number == t.number
    assert reason.startswith(WORKER_DIED) and "pid 1" in reason


def test_unclaimed_running_trials_are_given_up_but_own_ones_never():
    """Check that a RUNNING trial no worker claims is given up after the grace period (a worker
    killed between asking and its first beat), and that this worker's own claims are kept."""
    study = optuna.create_study()
    orphan, mine = study.ask(DIST), study.ask(DIST)
    watcher = Watcher(0.2, RECORD_PREFIX + "me")
    assert watcher.dead(study, {mine._trial_id}) == []
    time.sleep(0.3)
    found = watcher.dead(study, {mine._trial_id})
    assert [t.number for t, _ in found] == [orphan.number]
    assert "no live worker claimed it" in found[0][1]


def test_two_watchers_requeue_a_dead_trial_once(tmp_path):
    """Check that when two workers give up the same trial (here on a real SQLite file), only the
    first fails and re-queues it, and a trial that finished meanwhile is left alone."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    other = optuna.load_study(storage=url, study_name="s")
    t, done = study.ask(DIST), study.ask(DIST)
    study.tell(done, 1.0)
    w = t.params["pos_weight"]
    assert give_up(study, t._trial_id, {"pos_weight": w}, WORKER_DIED) is True
    assert give_up(other, t._trial_id, {"pos_weight": w}, WORKER_DIED) is False
    assert give_up(other, done._trial_id, done.params, WORKER_DIED) is False
    trials = other.get_trials()
    assert [s.state for s in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.WAITING]
    assert trials[2].system_attrs["fixed_params"] == {"pos_weight": w}
    assert "fail_reason" not in trials[1].user_attrs


def test_heartbeat_moves_and_says_when_it_leaves():
    """Check that the heartbeat thread bumps its counter on its own, writes a claim at once, and
    records that the worker left."""
    study = optuna.create_study()
    beat = Heartbeat(study, 0.05, "me")
    try:
        first = records(study)[RECORD_PREFIX + "me"]["beat"]
        time.sleep(0.3)
        assert records(study)[RECORD_PREFIX + "me"]["beat"] >= first + 3
        beat.claim([41, 42])
        wait_for(lambda: records(study)[RECORD_PREFIX + "me"]["trials"] == [41, 42], timeout=2)
    finally:
        beat.stop()
    assert records(study)[RECORD_PREFIX + "me"] | {"beat": 0} == {
        "host": records(study)[RECORD_PREFIX + "me"]["host"],
        "pid": os.getpid(),
        "beat": 0,
        "trials": [],
        "done": True,
    }


def test_shielded_defers_ctrl_c_to_the_end_of_the_block():
    """Check that SIGINT inside a shielded block lets the block finish, then raises
    KeyboardInterrupt, and that the previous handler is back afterwards."""
    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(KeyboardInterrupt), shielded():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        steps.append("finished the block")
    assert steps == ["finished the block"]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_result_told_after_the_trial_was_given_up_is_dropped(caplog):
    """Check that a worker telling a trial another worker already gave up (late heartbeats) keeps
    going with a warning, and the trial stays failed with its weight queued once."""
    from fnsearch.search import TrialOutcome, _tell

    study = optuna.create_study()
    for t, value in zip([study.ask(DIST), study.ask(DIST)], (0.5, None), strict=True):
        w = t.params["pos_weight"]
        assert give_up(study, t._trial_id, {"pos_weight": w}, WORKER_DIED)
        outcome = TrialOutcome(w, value, fail_reason=None if value else "diverged")
        with caplog.at_level(logging.WARNING, logger="fnsearch"):
            _tell(study, t, outcome)
        assert study.trials[t.number].state == TrialState.FAIL
        assert study.trials[t.number].user_attrs["fail_reason"] == WORKER_DIED
    assert len([r for r in caplog.records if "given up by another worker" in r.getMessage()]) == 2
    assert [t.state for t in study.trials].count(TrialState.WAITING) == 2

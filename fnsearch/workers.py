"""Workers sharing one study: heartbeats, the trials of dead workers, and stopping cleanly.

Optuna's heartbeat runs only inside ``study.optimize`` (``study.ask`` warns when the storage has
one), and its stale-trial check skips trials that never beat, so a worker killed between asking a
trial and its first beat would leave that trial RUNNING for ever. The batched ask/tell loop keeps
its own record instead: one per worker in the study's system attributes (any storage has them),
holding a counter bumped every ``heartbeat`` seconds and the ids of the trials it is running.
Each worker watches the others' records with its own clock, so no two machines' clocks need to
agree: a worker whose counter has not moved for ``GRACE_BEATS`` heartbeats is dead, and so is a
RUNNING trial that no live worker has claimed for that long. Such trials are failed (reason
:data:`WORKER_DIED`) and their weights queued again - once, because the storage lets only one
caller move a trial from RUNNING to FAIL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "GRACE_BEATS",
    "INTERRUPTED",
    "WORKER_DIED",
    "Alone",
    "Crew",
    "give_up",
    "not_counted",
    "requeue_interrupted",
    "shielded",
    "worker_name",
]

log = logging.getLogger("fnsearch")

INTERRUPTED = "interrupted before it finished"
WORKER_DIED = "its worker died before it finished"
RECORD_PREFIX = "fnsearch:worker:"
# A beat can be late (a busy machine, a slow database write) but three in a row are not.
GRACE_BEATS = 3


def worker_name() -> str:
    """A name no other worker of any machine has, readable in logs: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def not_counted(reason: str | None) -> bool:
    """A failure that says nothing about the trial's weight: its run was stopped or its worker died."""
    return reason is not None and (reason == INTERRUPTED or reason.startswith(WORKER_DIED))


def params_of(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters; a queued trial popped but not yet sampled has them as fixed params."""
    return dict(trial.params) or dict(trial.system_attrs.get("fixed_params", {}))


def give_up(study: optuna.Study, trial_id: int, params: dict[str, Any], reason: str) -> bool:
    """Fail a RUNNING trial and queue its parameters again; False if it had finished already."""
    storage = study._storage  # trials of other processes have no Trial object here: use their ids
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:  # its owner or another watcher was first
        return False
    if params:
        study.enqueue_trial(params)
    return True


def requeue_interrupted(study: optuna.Study) -> None:
    """Fail the trials a dead run left RUNNING and queue their weights once (exclusive storage)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        give_up(study, t._trial_id, params_of(t), INTERRUPTED)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise KeyboardInterrupt.

    A storage step cut in half (a trial asked but not recorded as ours, half a round told) would
    leave trials nobody accounts for; training itself stays interruptible. Signals whose handler is
    not Python's (SIGTERM's default kills the process) are left alone, and so is a thread other
    than the main one, where Python delivers no signals anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


class Alone:
    """The only process running trials on its storage (a run folder's journal, SQLite, memory)."""

    def reap(self, study: optuna.Study) -> None:
        requeue_interrupted(study)  # nobody else runs here: a RUNNING trial was left by a dead run

    def asking(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def running(self, trial_ids: list[int]) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def idle(self) -> None:
        time.sleep(0.25)  # not reached when alone (nothing runs elsewhere); never spin if it is

    def close(self) -> None:
        pass


class Heartbeat:
    """This worker's record in the study, rewritten every ``interval`` seconds by a thread."""

    def __init__(self, study: optuna.Study, interval: float, name: str) -> None:
        self.interval = interval
        self.key = RECORD_PREFIX + name
        self._storage, self._study_id = study._storage, study._study_id
        self._record: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "beat": 0,
            "trials": [],
            "done": False,
        }
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._write()  # the others know this worker before it asks its first trial
        self._thread = threading.Thread(target=self._run, name="fnsearch-heartbeat", daemon=True)
        self._thread.start()

    @property
    def claims(self) -> set[int]:
        with self._lock:
            return set(self._record["trials"])

    def claim(self, trial_ids: list[int], *, now: bool = True) -> None:
        """Record the trials this worker runs; ``now`` writes at once instead of at the next beat."""
        with self._lock:
            self._record["trials"] = list(trial_ids)
        if now:
            self._wake.set()

    def stop(self) -> None:
        """Stop beating and record that this worker left (so nobody waits for its silence)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.interval + 5)
        with self._lock:
            self._record.update(trials=[], done=True)
        try:
            self._write()
        except Exception as e:  # leaving without the record only costs the others one grace period
            log.warning("could not record that this worker left: %s", e)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._write()
            except Exception as e:  # keep beating: the storage retries, and may come back
                log.warning("heartbeat not recorded: %s", e)

    def _write(self) -> None:
        with self._lock:
            self._record["beat"] += 1
            record = dict(self._record, trials=list(self._record["trials"]))
        self._storage.set_study_system_attr(self._study_id, self.key, record)


class Watcher:
    """Finds the RUNNING trials whose worker is gone, judged by this process' own clock."""

    def __init__(self, grace: float, own_key: str) -> None:
        self.grace = grace
        self._own = own_key
        self._beats: dict[str, tuple[Any, float]] = {}  # record key -> (beat, when it last moved)
        self._unclaimed: dict[int, float] = {}  # trial id -> when first seen unclaimed

    def dead(self, study: optuna.Study, mine: set[int]) -> list[tuple[FrozenTrial, str]]:
        """The RUNNING trials to give up, with the reason for each."""
        now = time.monotonic()
        alive: set[int] = set(mine)
        orphaned: dict[int, str] = {}
        for key, record in study._storage.get_study_system_attrs(study._study_id).items():
            if not key.startswith(RECORD_PREFIX) or key == self._own or record.get("done"):
                continue
            beat, moved = self._beats.get(key, (None, now))
            if beat != record.get("beat"):
                beat, moved = self._beats[key] = (record.get("beat"), now)
            silent = now - moved
            for trial_id in record.get("trials", []):
                if silent <= self.grace:
                    alive.add(trial_id)
                else:
                    orphaned[trial_id] = (
                        f"{WORKER_DIED} (worker {record.get('host')} pid {record.get('pid')} "
                        f"silent for {silent:.0f} s)"
                    )
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        found = []
        for t in running:
            reason = orphaned.get(t._trial_id)
            if t._trial_id in alive:
                self._unclaimed.pop(t._trial_id, None)
            elif reason is None:
                since = self._unclaimed.setdefault(t._trial_id, now)
                if now - since > self.grace:
                    reason = f"{WORKER_DIED} (no live worker claimed it for {now - since:.0f} s)"
            if reason is not None:
                found.append((t, reason))
        still = {t._trial_id for t in running}
        self._unclaimed = {k: v for k, v in self._unclaimed.items() if k in still}
        return found


class Crew:
    """One of several workers on a shared study: heartbeats, reaping, and the round lock."""

    def __init__(
        self,
        study: optuna.Study,
        lock: Callable[[], contextlib.AbstractContextManager[None]],
        heartbeat: float,
        name: str,
    ) -> None:
        self.heartbeat = heartbeat
        self.name = name
        self._beat = Heartbeat(study, heartbeat, name)
        self._watch = Watcher(GRACE_BEATS * heartbeat, self._beat.key)
        self._lock = lock

    def reap(self, study: optuna.Study) -> None:
        """Give up the trials of dead workers, queueing their weights again."""
        for t, reason in self._watch.dead(study, self._beat.claims):
            if give_up(study, t._trial_id, params_of(t), reason):
                log.warning("trial %d: %s; its weight is queued again", t.number, reason)

    def asking(self) -> contextlib.AbstractContextManager[None]:
        """Held while a round counts what is left and asks its trials, so totals are exact."""
        return self._lock()

    @contextlib.contextmanager
    def running(self, trial_ids: list[int]) -> Iterator[None]:
        self._beat.claim(trial_ids)
        try:
            yield
        finally:
            self._beat.claim([], now=False)  # finished trials need no claim; the next beat says so

    def idle(self) -> None:
        """Wait a little while other workers run the study's last trials (or die doing so)."""
        time.sleep(0.25)  # two cheap reads per wait; the last worker out is not kept waiting

    def close(self) -> None:
        self._beat.stop()

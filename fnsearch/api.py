"""``tune()``: the product. Spec -> data -> search -> result -> run folder, in that order.

It never prints to stdout and never exits: progress goes to the ``fnsearch`` logger (and the
optional ``progress`` callback), mistakes raise :class:`~fnsearch.errors.FnsearchError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from .costs import theory_weight
from .data import Dataset, prepare_dataset, resolve_folds
from .errors import StorageError
from .rdb import connect
from .result import TuneResult, build_result
from .runfolder import LOG, SUMMARY, write_run
from .search import (
    Evaluator,
    SearchStats,
    failed_count,
    finished_count,
    open_study,
    population_size,
    run_search,
    weight_range,
)
from .spec import Spec, load_spec, mask_url, url_secrets
from .storage import STUDY_FILE, check_url, drop_torn_tail, make_storage, run_folder_lock
from .train import TrainConfig, resolve_device
from .workers import Alone, Crew, worker_name

__all__ = ["Progress", "WorkSummary", "rebuild", "tune", "work"]

log = logging.getLogger("fnsearch")


@dataclass(frozen=True)
class Progress:
    """Handed to the ``progress`` callback after every round of trials."""

    finished: int
    total: int
    best_value: float | None
    best_weight: float | None
    seconds: float


# Keys whose change alters what a trial measures: a study made with other values is refused.
_FINGERPRINT_KEYS = {
    "study": ("seed",),
    "data": (
        "path",
        "label",
        "positive",
        "drop",
        "val",
        "test",
        "sep",
        "decimal",
        "thousands",
        "na_values",
        "encoding",
    ),
    "cost": ("fn", "fp", "tp", "tn"),
    "search": ("low", "high", "folds", "repeats"),
    "model": (
        "kind",
        "hidden",
        "activation",
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "patience",
    ),
}


def _fingerprint(spec: Spec) -> str:
    d = spec.to_dict()
    picked = {s: {k: d[s][k] for k in keys} for s, keys in _FINGERPRINT_KEYS.items()}
    if picked["data"]["thousands"] is None:  # added later: unset, it keeps older studies' prints
        del picked["data"]["thousands"]
    return hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _Plan:
    """Everything fixed before the first trial: validated data, device, weights, training."""

    spec: Spec
    device: torch.device
    dataset: Dataset
    w_star: float
    low: float
    high: float
    config: TrainConfig
    n_folds: int
    population: int

    @classmethod
    def make(cls, spec: Spec) -> _Plan:
        device = resolve_device(spec.model["device"])
        dataset = prepare_dataset(spec)
        train = dataset.train
        # With per-example costs the training rows carry them as sample weights, so the weight
        # that theory puts on top is 1 (Elkan's ratio is what it would be without them).
        costs = dataset.costs.take(train)
        w_star = 1.0 if costs.per_example else theory_weight(dataset.y[train], costs)
        positives = max(1, int(dataset.y[train].sum()))
        ratio = (train.size - positives) / positives
        low, high = weight_range(spec, w_star, ratio)
        n_folds = resolve_folds(spec.search["folds"], dataset.pool.size)
        population = population_size(spec, spec.study["n_trials"])
        return cls(
            spec,
            device,
            dataset,
            w_star,
            low,
            high,
            TrainConfig.from_spec(spec),
            n_folds,
            population,
        )

    def open(self, store: optuna.storages.BaseStorage, worker: str | None = None) -> optuna.Study:
        """The plan's study in ``store``, created (with its first trials) or checked and loaded."""
        return open_study(
            self.spec,
            store,
            seed_attrs=self.study_attrs(),
            low=self.low,
            high=self.high,
            n_grid=self.spec.study["n_trials"],
            worker=worker,
        )

    def join(
        self, held: contextlib.ExitStack, run_dir: Path | None
    ) -> tuple[optuna.Study, Alone | Crew]:
        """Open (or create) the plan's study, and how this process shares it with others.

        What must be held while the study runs (run folder lock, SQLite guard, database locks,
        heartbeat) goes on ``held``.
        """
        url = self.spec.study["storage"]
        if url is None:
            if run_dir is not None:
                run_dir.mkdir(parents=True, exist_ok=True)
                held.enter_context(run_folder_lock(run_dir))
                drop_torn_tail(run_dir)
            return self.open(make_storage(None, run_dir)), Alone()
        check_url(url)
        database = held.enter_context(connect(url))
        name = self.spec.study["name"]
        worker = None if database.exclusive else worker_name()
        with database.lock(f"open:{name}"):  # fingerprint and first trials: once, by one worker
            study = self.open(database.storage, worker)
        if worker is None:
            return study, Alone()
        # The study's first worker fixes the heartbeat, so no worker judges another by its own.
        heartbeat = study.user_attrs.get("heartbeat", self.spec.study["heartbeat"])
        if heartbeat != self.spec.study["heartbeat"]:
            log.info("heartbeat every %s s, as the study was started with", heartbeat)
        crew = Crew(study, lambda: database.lock(f"ask:{name}"), heartbeat, worker)
        held.callback(crew.close)
        return study, crew

    def search(
        self,
        study: optuna.Study,
        progress: Callable[[Progress], None] | None,
        crew: Alone | Crew | None = None,
    ) -> SearchStats:
        """Run rounds of trials until the study holds ``n_trials`` finished ones."""
        return run_search(
            study,
            Evaluator(self.dataset, self.config, self.device, self.spec.search["repeats"]),
            n_trials=self.spec.study["n_trials"],
            population=self.population,
            low=self.low,
            high=self.high,
            max_failed=self.spec.study["max_failed"] or self.spec.study["n_trials"],
            crew=crew,
            on_batch=_reporter(progress),
        )

    def study_attrs(self) -> dict[str, Any]:
        return {
            "fingerprint": _fingerprint(self.spec),
            "spec": self.spec.to_dict(),
            "theory_weight": self.w_star,
            "low": self.low,
            "high": self.high,
            "heartbeat": self.spec.study["heartbeat"],
        }


def tune(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    *,
    overrides: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> TuneResult:
    """Search the false-negative weight for a spec and return the result.

    ``spec`` is a TOML path, a dict or a :class:`~fnsearch.spec.Spec`; ``overrides`` maps dotted keys
    to values (``{"model.hidden": [32]}``). With ``out=None`` nothing is written and the study lives
    in memory (unless ``storage`` names one); with ``out`` the run folder is written there and a
    rerun resumes the stored study. ``n_trials`` is the study's total of finished trials.
    """
    spec = load_spec(spec, overrides, storage=storage, n_trials=n_trials)
    plan = _Plan.make(spec)  # every user mistake in spec or data surfaces here, before any write
    run_dir = _check_run_dir(out)
    with contextlib.ExitStack() as held, _run_context(spec, None):
        # A storage URL is opened and its study checked before the run folder exists, so a
        # mistake there leaves nothing behind; the default journal file lives in the folder.
        study, crew = plan.join(held, run_dir)
        held = held.pop_all()  # locks and heartbeat are held until the result is written
    with held, _run_context(spec, run_dir):
        log.info(
            "study %r: %d trials, population %d, %d fold(s), weights %.3g-%.3g, w* = %.4g, on %s",
            spec.study["name"],
            spec.study["n_trials"],
            plan.population,
            plan.n_folds,
            plan.low,
            plan.high,
            plan.w_star,
            _device_note(spec, plan.device),
        )
        stats = plan.search(study, progress, crew)
        return _finish(plan, study, stats, run_dir)


@dataclass(frozen=True)
class WorkSummary:
    """What a worker leaves behind in the shared study."""

    finished: int
    complete: int
    trials_run: int
    failed: int = 0
    stopped_reason: str | None = None


def work(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    *,
    overrides: Mapping[str, Any] | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> WorkSummary:
    """Join (or create) the spec's study in shared storage and run trials until it holds
    ``n_trials`` finished trials. Writes no run folder; build the result with :func:`rebuild`.

    Any number of workers may run at once on PostgreSQL, each on its own machine or device; the
    trials of a worker that dies are noticed by the others and run again.
    """
    spec = load_spec(spec, overrides, storage=storage, n_trials=n_trials)
    if spec.study["storage"] is None:
        raise StorageError(
            "a worker needs shared storage: pass --storage URL (or set "
            "FNSEARCH_STORAGE / [study] storage)"
        )
    plan = _Plan.make(spec)
    with contextlib.ExitStack() as held, _run_context(spec, None):
        study, crew = plan.join(held, None)
        log.info(
            "worker %s on study %r in %s: %d/%d trials finished, population %d, on %s",
            getattr(crew, "name", "alone"),
            spec.study["name"],
            mask_url(spec.study["storage"]),
            finished_count(study),
            spec.study["n_trials"],
            plan.population,
            _device_note(spec, plan.device),
        )
        stats = plan.search(study, progress, crew)
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return WorkSummary(
        finished_count(study), complete, stats.trials_run, failed_count(study), stats.stopped_reason
    )


def rebuild(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
) -> TuneResult:
    """Rebuild the result (and, with a folder, ``summary.json`` and ``report.html``) from storage.

    Give a run folder (its ``study.log``, or ``storage`` for a study kept elsewhere), or ``storage``
    and ``study_name``; ``out`` is where to write (default: the run folder).
    """
    target = Path(out) if out is not None else (Path(run_dir) if run_dir is not None else None)
    if storage is None and run_dir is not None:
        storage_obj = _run_folder_storage(Path(run_dir))
    elif storage is not None:
        if (
            storage.startswith("sqlite:///")
            and not Path(storage.removeprefix("sqlite:///")).is_file()
        ):
            raise StorageError(f"storage {storage} does not exist; check the path")
        storage_obj = make_storage(storage, None)
    else:
        raise StorageError("give a run folder, or --storage URL with --study NAME")
    if study_name is None:
        study_name = _study_name(storage_obj, run_dir)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_obj)
    except KeyError:
        names = optuna.get_all_study_names(storage_obj)
        raise StorageError(
            f"no study {study_name!r} in that storage; it holds "
            f"{', '.join(map(repr, names)) or 'no studies'}"
        ) from None
    stored = study.user_attrs.get("spec")
    if stored is None:
        raise StorageError(f"study {study_name!r} was not made by fnsearch (no spec stored)")
    spec = load_spec(stored, storage=storage)
    plan = _Plan.make(spec)
    with _run_context(spec, target):
        stats = SearchStats(population=plan.population)
        # A rebuild runs no trial: keep the search timing the run folder recorded, if any.
        return _finish(plan, study, stats, target, timing=_recorded_timing(run_dir))


def _recorded_timing(run_dir: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    if run_dir is None:
        return None
    try:
        timing = json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))["timing"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no summary yet, or a damaged one: the rebuild has no timing to keep
    ok = isinstance(timing, dict) and isinstance(timing.get("seconds"), int | float)
    return timing if ok and timing.get("trials_run") else None


def _device_note(spec: Spec, device: torch.device) -> str:
    if spec.model["device"] == "auto" and device.type == "cpu":
        return "cpu (device auto: no CUDA GPU visible)"
    return str(device)


def _finish(
    plan: _Plan,
    study: optuna.Study,
    stats: SearchStats,
    run_dir: Path | None,
    *,
    timing: dict[str, Any] | None = None,
) -> TuneResult:
    result = build_result(
        plan.spec,
        plan.dataset,
        study,
        config=plan.config,
        device=plan.device,
        stats=stats,
        w_star=plan.w_star,
        low=plan.low,
        high=plan.high,
        n_folds=plan.n_folds,
    )
    if timing is not None:
        result.timing = timing
    if run_dir is not None:
        write_run(result, run_dir)
        log.info("wrote %s", run_dir / SUMMARY)
    return result


def _check_run_dir(out: str | os.PathLike[str] | None) -> Path | None:
    """The run folder path; a path that is (or lies under) a file is a mistake."""
    if out is None:
        return None
    run_dir = Path(out)
    for p in (run_dir, *run_dir.parents):
        if p.exists():
            if not p.is_dir():
                raise StorageError(
                    f"--out {str(run_dir)!r}: {str(p)!r} is a file, not a folder; "
                    "choose another run folder"
                )
            if not os.access(p, os.W_OK | os.X_OK):  # found now, not after the whole search
                raise StorageError(
                    f"--out {str(run_dir)!r}: cannot write in {str(p)!r}; choose another run folder"
                )
            break
    return run_dir


def _recorded(run_dir: Path) -> dict[str, Any]:
    """The storage URL and study name a run folder's ``summary.json`` records; empty when it has
    none or it is unreadable (``report`` is how a damaged summary gets rebuilt)."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
        found = {"storage": summary["spec"]["study"]["storage"], "name": summary["study"]["name"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str) and v}


def _run_folder_storage(run_dir: Path) -> optuna.storages.BaseStorage:
    if (run_dir / STUDY_FILE).is_file():
        return make_storage(None, run_dir)
    url = _recorded(run_dir).get("storage")
    if url and "***" not in url:
        return make_storage(url, None)
    if url:
        raise StorageError(
            f"{run_dir} was run on {url}: pass --storage with the password (or "
            "set FNSEARCH_STORAGE)"
        )
    raise StorageError(
        f"{str(run_dir)!r} holds no study: no {STUDY_FILE}, and no readable {SUMMARY} naming "
        "other storage; check the path or give --storage and --study"
    )


def _study_name(storage: optuna.storages.BaseStorage, run_dir: Any) -> str:
    if run_dir is not None and "name" in _recorded(Path(run_dir)):
        return _recorded(Path(run_dir))["name"]
    names = optuna.get_all_study_names(storage)
    if len(names) != 1:
        raise StorageError(
            f"the storage holds {len(names)} studies ({', '.join(names)}); name one with --study"
        )
    return names[0]


def _reporter(progress: Callable[[Progress], None] | None):
    import time

    start = time.perf_counter()

    def on_batch(study: optuna.Study, total: int) -> None:
        done = finished_count(study)
        try:
            best = study.best_trial
            bv, bw = best.value, best.params.get("pos_weight")
        except ValueError:
            bv = bw = None
        log.info(
            "trials %d/%d, best validation cost %s",
            done,
            total,
            "n/a" if bv is None else f"{bv:.4f} at w = {bw:.3g}",
        )
        if progress is not None:
            progress(Progress(done, total, bv, bw, time.perf_counter() - start))

    return on_batch


class _Scrub(logging.Filter):
    """Masks the storage password in every line, whoever formats it: a second line of defence
    behind messages that already show :func:`~fnsearch.spec.mask_url`."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            text = record.getMessage()
            for secret in self._secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
        return True


@contextlib.contextmanager
def _run_context(spec: Spec, run_dir: Path | None) -> Iterator[None]:
    """Quiet Optuna's per-trial lines, apply [model] threads, and log to ``run.log``."""
    handler = None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run_dir / LOG, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = torch.get_num_threads()
    if spec.model["threads"] != "auto":
        torch.set_num_threads(int(spec.model["threads"]))
    np_err = np.seterr(over="ignore")  # exp overflow in sigmoid of extreme logits is exact (0 or 1)
    scrub = _Scrub(url_secrets(spec.study["storage"]))
    log.addFilter(scrub)
    try:
        yield
    finally:
        log.removeFilter(scrub)
        np.seterr(**np_err)
        torch.set_num_threads(threads)
        optuna.logging.set_verbosity(verbosity)
        if handler is not None:
            log.removeHandler(handler)
            handler.close()

"""The Optuna study: storage, sampler, and the batched ask -> train -> tell loop.

Each round asks K trials, trains their weights as one population on every fold, and tells K results.
A trial's value is its cross-validated (or validation) cost per example at threshold 0.5; its
counts, standard error and tuned threshold travel as one packed user attribute (one storage write).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from .costs import confusion_counts, crossfit_threshold_costs, example_costs, tune_threshold
from .data import Dataset
from .errors import SpecError, StorageError
from .spec import Spec
from .storage import write_behind
from .tensors import make_split
from .train import TrainConfig, train_population
from .workers import INTERRUPTED, Alone, Crew, give_up, not_counted, shielded

__all__ = [
    "ATTR",
    "Evaluator",
    "SearchStats",
    "TrialOutcome",
    "failed_count",
    "finished_count",
    "open_study",
    "population_size",
    "run_search",
    "weight_range",
]

log = logging.getLogger("fnsearch")

ATTR = "fnsearch"  # the one packed user attribute per trial
PARAM = "pos_weight"


def weight_range(spec: Spec, w_star: float, class_ratio: float) -> tuple[float, float]:
    """The search range: the spec's, or ``auto``: a decade around 1, w* and the class ratio."""
    low, high = spec.search["low"], spec.search["high"]
    if low == "auto":
        low = 0.1 * min(1.0, w_star)
    if high == "auto":
        high = 10.0 * max(1.0, w_star, class_ratio)
    if low >= high:
        raise SpecError(
            f"[search] low ({low:g}) must be below high ({high:g}); widen the range or set both"
        )
    return float(low), float(high)


def population_size(spec: Spec, n_trials: int) -> int:
    """K: ``auto`` is a quarter of the trials, 1 to 64, so the sampler learns over >= 4 rounds.

    It depends only on the spec (never on the machine), so a study reproduces anywhere.
    """
    if spec.search["population"] != "auto":
        return int(spec.search["population"])
    return int(min(64, max(1, n_trials // 4)))


def open_study(
    spec: Spec,
    storage: optuna.storages.BaseStorage,
    *,
    seed_attrs: dict[str, Any],
    low: float,
    high: float,
    n_grid: int,
    worker: str | None = None,
) -> optuna.Study:
    """Create or load the spec's study, check it was made by the same spec, seed the first trials.

    ``worker`` names one of several workers sharing the study: its sampler is seeded from the
    study's seed and that name, since workers drawing the same random weights would waste trials.
    """
    name = spec.study["name"]
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=_sampler(spec, low, high, n_grid, seed_attrs, worker),
        direction="minimize",
        load_if_exists=True,
    )
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        for key, value in seed_attrs.items():
            study.set_user_attr(key, value)
        if not study.trials:
            for w in _first_weights(seed_attrs["theory_weight"], low, high):
                study.enqueue_trial({PARAM: w}, skip_if_exists=True)
    elif stored != seed_attrs["fingerprint"]:
        raise StorageError(
            f"study {name!r} in this storage was made with a different spec (data, costs, model "
            "or search settings); give it another study name (--set study.name=NEW), use a new "
            "run folder for the default storage, or go back to the original spec"
        )
    return study


def _first_weights(w_star: float, low: float, high: float) -> list[float]:
    # The theory weight and plain BCE are the two answers a user would try by hand: trial 0 and 1.
    return [w for w in dict.fromkeys([w_star, 1.0]) if low <= w <= high]


def _sampler(
    spec: Spec, low: float, high: float, n_grid: int, attrs: dict[str, Any], worker: str | None
):
    seed = spec.study["seed"]
    if worker is not None:
        seed = int.from_bytes(hashlib.sha256(f"{seed}:{worker}".encode()).digest()[:4], "big")
    kind = spec.search["sampler"]
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if kind == "grid":
        grid = sorted(
            {
                *np.geomspace(low, high, max(2, n_grid)).tolist(),
                *_first_weights(attrs["theory_weight"], low, high),
            }
        )
        return optuna.samplers.GridSampler({PARAM: grid}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)


# --- evaluation of a batch of weights ---------------------------------------------------------


@dataclass
class TrialOutcome:
    """One weight's validation (or out-of-fold) result."""

    pos_weight: float
    value: float | None
    value_se: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pred_pos_rate: float | None = None
    tuned_threshold: float | None = None
    tuned_value: float | None = None  # cross-fitted cost of tuning the threshold
    tuned_value_se: float | None = None
    epochs: list[int] = field(default_factory=list)
    fail_reason: str | None = None
    seconds: float = 0.0

    def attrs(self) -> dict[str, Any]:
        return {
            "value_se": self.value_se,
            **self.counts,
            "pred_pos_rate": self.pred_pos_rate,
            "tuned_threshold": self.tuned_threshold,
            "tuned_value": self.tuned_value,
            "tuned_value_se": self.tuned_value_se,
            "epochs": self.epochs,
            "seconds": self.seconds,
        }


class Evaluator:
    """Scores weights by cross-validation: tensors for every fold built once, then reused.

    Every trial sees the same folds, initialisations and minibatch orders (common random numbers),
    so two trials differ only by their weight. With ``repeats`` > 1 each fold is trained again from
    other initialisations and orders, and a row's cost is its mean over the repeats.
    """

    def __init__(
        self, dataset: Dataset, config: TrainConfig, device: torch.device, repeats: int = 1
    ) -> None:
        self.dataset = dataset
        self.config = config
        self.repeats = repeats
        self.splits = [make_split(dataset, tr, va, device)[0] for tr, va in dataset.folds]
        self.val_rows = np.concatenate([va for _, va in dataset.folds])
        self.y = dataset.y[self.val_rows]
        self.costs = dataset.costs.take(self.val_rows)
        self.groups = _threshold_groups(dataset, self.y, config.seed)

    def __call__(self, weights: list[float]) -> list[TrialOutcome]:
        start = time.perf_counter()
        k, n_folds = len(weights), len(self.splits)
        logits = np.empty((self.repeats, k, self.val_rows.size), dtype=np.float32)
        failed = np.full(k, -1)
        epochs = np.zeros((k, self.repeats * n_folds), dtype=int)
        for r in range(self.repeats):
            config = replace(self.config, seed=self.config.seed + r)
            offset = 0
            for f, split in enumerate(self.splits):
                fit = train_population(split, np.asarray(weights), config)
                n_val = split.y_val.shape[0]
                logits[r, :, offset : offset + n_val] = fit.val_logits
                offset += n_val
                epochs[:, r * n_folds + f] = fit.epochs
                failed = np.where((failed < 0) & (fit.failed_epoch >= 0), fit.failed_epoch, failed)
        seconds = (time.perf_counter() - start) / k
        return [
            self._outcome(w, logits[:, i], int(failed[i]), epochs[i].tolist(), seconds)
            for i, w in enumerate(weights)
        ]

    def _outcome(
        self, w: float, logit: np.ndarray, failed_epoch: int, epochs: list[int], seconds: float
    ) -> TrialOutcome:
        if failed_epoch >= 0 or not np.isfinite(logit).all():
            reason = (
                f"training diverged at epoch {failed_epoch} (non-finite gradients or parameters)"
                if failed_epoch >= 0
                else "the model's outputs became non-finite"
            )
            return TrialOutcome(w, None, fail_reason=reason, epochs=epochs, seconds=seconds)
        # logit is (repeats, rows): a row's cost is its mean over the repeats.
        pred = logit >= 0
        per_example = example_costs(self.y, pred, self.costs).mean(axis=0)
        scores = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
        r = logit.shape[0]
        rows = np.tile(np.arange(self.y.size), r)
        y, costs, flat = self.y[rows], self.costs.take(rows), scores.ravel()
        # The threshold the policy would use (tuned on every out-of-fold row) and the honest cost
        # of tuning one (each fold's rows scored with a threshold tuned on the other folds).
        threshold, _ = tune_threshold(y, flat, costs)
        tuned = crossfit_threshold_costs(y, flat, costs, np.tile(self.groups, r))
        tuned = tuned.reshape(r, -1).mean(axis=0)
        return TrialOutcome(
            w,
            float(per_example.mean()),
            _se(per_example),
            confusion_counts(self.y, pred[0]),
            float(pred.mean()),
            threshold,
            float(tuned.mean()),
            _se(tuned),
            epochs,
            seconds=seconds,
        )


def _se(per_example: np.ndarray) -> float:
    return float(per_example.std(ddof=1) / math.sqrt(per_example.size))


def _threshold_groups(dataset: Dataset, y_val: np.ndarray, seed: int) -> np.ndarray:
    """Which group each scored row is in for cross-fitting thresholds: its CV fold, or with one
    validation split, five stratified chunks of it."""
    if len(dataset.folds) > 1:
        return np.concatenate([np.full(va.size, f) for f, (_, va) in enumerate(dataset.folds)])
    from sklearn.model_selection import StratifiedKFold

    groups = np.empty(y_val.size, dtype=int)
    chunks = StratifiedKFold(5, shuffle=True, random_state=seed).split(y_val, y_val)
    for g, (_, rows) in enumerate(chunks):
        groups[rows] = g
    return groups


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class SearchStats:
    """What the loop measured."""

    seconds: float = 0.0
    trials_run: int = 0
    population: int = 1
    stopped_reason: str | None = None


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards n_trials: complete or pruned."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def failed_count(study: optuna.Study) -> int:
    """Failed trials that count towards max_failed (not those whose run stopped or worker died)."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not not_counted(t.user_attrs.get("fail_reason"))
    )


def _taken(study: optuna.Study) -> int:
    """Trials finished or being run by some worker (a dead one's, until that is noticed).

    One read: counted from two, a trial finishing in between would be in neither, and the round
    would ask one trial too many.
    """
    taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=taken))


def run_search(
    study: optuna.Study,
    evaluate: Callable[[list[float]], list[TrialOutcome]],
    *,
    n_trials: int,
    population: int,
    low: float,
    high: float,
    max_failed: int,
    crew: Alone | Crew | None = None,
    on_batch: Callable[[optuna.Study, int], None] | None = None,
) -> SearchStats:
    """Ask, train and tell in rounds of ``population`` until the study holds ``n_trials`` finished.

    ``crew`` coordinates with other workers on the same study (default: this process is alone).
    A round asks only what no worker is running yet, so the study ends with exactly ``n_trials``.
    Ctrl-C (KeyboardInterrupt) fails the round's trials and queues their weights again.
    """
    crew = crew or Alone()
    stats = SearchStats(population=population)
    dist = FloatDistribution(low, high, log=True)
    start = time.perf_counter()
    waiting = False
    try:
        while True:
            crew.reap(study)
            if finished_count(study) >= n_trials:
                break
            if failed_count(study) >= max_failed:
                stats.stopped_reason = (
                    f"stopped after {max_failed} failed trials ([study] max_failed)"
                )
                break
            with write_behind(study):  # the round's storage writes reach the file together
                trials = _round(study, evaluate, dist, n_trials, population, crew)
            if not trials:
                if not waiting:
                    log.info("waiting for the trials other workers are running")
                waiting = True
                crew.idle()
                continue
            waiting = False
            stats.trials_run += len(trials)
            if on_batch is not None:
                on_batch(study, n_trials)
    finally:
        stats.seconds = time.perf_counter() - start
    return stats


def _round(
    study: optuna.Study,
    evaluate: Callable[[list[float]], list[TrialOutcome]],
    dist: FloatDistribution,
    n_trials: int,
    population: int,
    crew: Alone | Crew,
) -> list[optuna.Trial]:
    """One round: ask what is left (under the crew's lock), train, tell. Returns its trials."""
    trials: list[optuna.Trial] = []
    weights: list[float] = []
    try:
        with shielded():
            # Only making the trials needs the crew's lock (it makes the count exact); sampling
            # their weights, the slower half of an ask, happens outside it.
            with crew.asking():
                left = n_trials - _taken(study)
                for _ in range(max(0, min(population, left))):
                    trials.append(study.ask())
            weights = [t.suggest_float(PARAM, dist.low, dist.high, log=True) for t in trials]
        if not trials:
            return trials
        with crew.running([t._trial_id for t in trials]):
            outcomes = evaluate(weights)
            with shielded():
                for t, o in zip(trials, outcomes, strict=True):
                    _tell(study, t, o)
    except KeyboardInterrupt:
        with shielded():
            for i, t in enumerate(trials):  # a trial cut off before sampling has no weight
                give_up(study, t._trial_id, {PARAM: weights[i]} if weights else {}, INTERRUPTED)
        raise
    return trials


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome) -> None:
    try:
        trial.set_user_attr(ATTR, outcome.attrs())
        if outcome.value is None:
            trial.set_user_attr("fail_reason", outcome.fail_reason)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            return
        if study.tell(trial, outcome.value, skip_if_finished=True).state == TrialState.COMPLETE:
            return
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    # Another worker took this one for dead (its heartbeats came late) and queued its weight again:
    # the rerun counts, this result does not, so the total stays exact.
    log.warning(
        "trial %d was given up by another worker while it ran (heartbeats late?); its weight "
        "runs again",
        trial.number,
    )

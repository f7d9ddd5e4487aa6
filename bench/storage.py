"""How much of a search is storage? Ask/tell 256 trials in batches of 16 with fnsearch's writes.

"journal, write-behind" is fnsearch's default: the run folder's journal file, each round's writes
held in memory and appended with one fsync at the end of the round (fnsearch.storage).

Run: .venv/bin/python bench/storage.py   (prints seconds per backend and the ratio to memory)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend, JournalStorage

from fnsearch.storage import make_storage, write_behind

N_TRIALS, BATCH = 256, 16
ATTRS = {
    "value_se": 0.01,
    "tp": 50,
    "fp": 40,
    "tn": 100,
    "fn": 10,
    "pred_pos_rate": 0.4,
    "tuned_threshold": 0.3,
    "tuned_value": 0.45,
    "epochs": [20, 21, 19, 22, 20],
    "seconds": 0.01,
}


def run(storage) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
    dist = {"pos_weight": FloatDistribution(0.1, 100, log=True)}
    start = time.perf_counter()
    for _ in range(N_TRIALS // BATCH):
        with write_behind(study):  # a no-op except for fnsearch's default journal
            trials = [study.ask(dist) for _ in range(BATCH)]
            for t in trials:
                t.set_user_attr("fnsearch", ATTRS)
                study.tell(t, abs(t.params["pos_weight"] - 5) / 10)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        results = {
            "memory": run(optuna.storages.InMemoryStorage()),
            "journal file": run(JournalStorage(JournalFileBackend(str(Path(d) / "s.log")))),
            "journal, write-behind": run(make_storage(None, Path(d))),
            "sqlite": run(f"sqlite:///{Path(d) / 's.db'}"),
        }
    base = results["memory"]
    print(f"{N_TRIALS} trials asked and told in batches of {BATCH} (TPE), one packed attribute")
    for name, seconds in results.items():
        print(f"  {name:<22} {seconds:6.2f} s   {seconds / base:5.1f}x memory")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""GPU benchmark for a lent CUDA machine (at most ~5 minutes): the seed loop and fnsearch on CUDA.

The lent H200 machine has torch (2.11, CUDA) but neither optuna nor plotly and no network, so
optuna and its pure-Python dependencies travel as wheels (`make gpu-wheels` here fetches them into
.whl/, which git ignores). Then, through the device tool, with `.whl` carried:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
        --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:. python3 bench/gpu.py

It prints the German-credit comparison on CUDA (same settings as bench/speed.py) and seconds per
trial at 100k and 1M rows with 64 trials as one population. Nothing here writes a report, so
plotly is not needed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.speed import SEED_SETTINGS, SPEC, scale_overrides, scale_spec, seed_loop


def fnsearch_on(device: str, n_trials: int) -> dict:
    from fnsearch import tune

    s = SEED_SETTINGS
    result = tune(
        SPEC,
        overrides={
            "model.hidden": [s["hidden"]],
            "model.batch_size": s["batch_size"],
            "model.lr": s["lr"],
            "model.epochs": s["epochs"],
            "model.patience": 0,
            "model.weight_decay": 0,
            "model.device": device,
            "search.folds": 1,
            "search.low": s["low"],
            "search.high": s["high"],
            "study.n_trials": n_trials,
        },
    )
    return {
        "trials_per_second": result.timing["trials_per_second"],
        "seconds": result.timing["seconds"],
        "pos_weight": result.best["pos_weight"],
        "test_cost": result.test["cost_per_example"],
    }


def scale_row(device: str, rows: int, trials: int) -> tuple[float, float]:
    from fnsearch import tune
    from fnsearch.datasets import load_builtin

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "g.parquet"
        load_builtin("german_credit").sample(n=rows, replace=True, random_state=0).to_parquet(path)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result = tune(scale_spec(str(path)), overrides=scale_overrides(trials, device))
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    return result.timing["seconds"] / trials, peak


def main() -> None:
    # --dry-run: the same code on the CPU with small sizes, to check the script before a lease.
    dry = "--dry-run" in sys.argv
    device = "cpu" if dry else "cuda"
    if not dry and not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU (or --dry-run to try it on the CPU)")
    name = "CPU dry run" if dry else torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__} on {name}")
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())  # warm-up outside the clocks
    start = time.perf_counter()
    seed = seed_loop(2 if dry else 6, device=device)
    fn = fnsearch_on(device, 32 if dry else 256)
    for name, r in (("seed loop", seed), ("fnsearch", fn)):
        print(
            f"  {name:<10} {r['trials_per_second']:8.2f} trials/s; chosen w {r['pos_weight']:.3g}, "
            f"test cost {r['test_cost']:.4f}"
        )
    print(f"  speed-up on {device}: {fn['trials_per_second'] / seed['trials_per_second']:.1f}x")
    for rows in (10_000,) if dry else (100_000, 1_000_000):
        per_trial, peak = scale_row(device, rows, 8 if dry else 64)
        print(f"  {rows:>9} rows: {per_trial:.4f} s/trial, peak GPU memory {peak:.0f} MiB")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

"""Speed benchmark: fnsearch against the loop a user writes from the seed answer, and row scaling.

    .venv/bin/python bench/speed.py              # both parts
    .venv/bin/python bench/speed.py --part seed  # only the seed-loop comparison
    .venv/bin/python bench/speed.py --part scale # only the scaling table

(a) The seed loop: an MLP (hidden 32) trained per trial with a DataLoader of batch 64, Adam lr 1e-3,
50 epochs, the seed's weighted-loss module, Optuna TPE over pos_weight in [0.1, 100], scored by
validation cost. (b) `fnsearch search` with the same model, epochs, batch size and lr, early
stopping off, one validation split, 256 trials, its default storage; its `timing.seconds` is end to
end (storage included). Both use the same split and preprocessing of German credit. Ratios are
within this one process run, so machine noise mostly cancels.

The scaling table resamples German credit to 10k, 100k and 1M rows (61 features after one-hot) and
runs each size in a fresh process (peak RSS never goes down): seconds per trial and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "studies" / "german_credit.toml"
SEED_SETTINGS = {
    "hidden": 32,
    "batch_size": 64,
    "lr": 1e-3,
    "epochs": 50,
    "low": 0.1,
    "high": 100.0,
}


class SeedWeightedBCE(torch.nn.Module):
    """The seed answer's loss module, verbatim in spirit."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -(self.w * y * F.logsigmoid(x) + (1 - y) * F.logsigmoid(-x)).mean()


def _german_tensors(device: str = "cpu"):
    from fnsearch.data import prepare_dataset
    from fnsearch.spec import load_spec
    from fnsearch.tensors import make_split

    spec = load_spec(SPEC, {"search.folds": 1})
    ds = prepare_dataset(spec)
    split, pre = make_split(ds, ds.train, ds.val, torch.device(device))
    x_test = torch.as_tensor(pre.transform(ds.features.iloc[ds.test]), device=device)
    return ds, split, x_test


def seed_loop(n_trials: int, device: str = "cpu") -> dict:
    """The per-trial loop a user writes; returns trials/s and the chosen weight's test cost."""
    from fnsearch.costs import bootstrap_ci, example_costs

    ds, split, x_test = _german_tensors(device)
    s = SEED_SETTINGS
    y_val = ds.y[ds.val]
    c_val, c_test = ds.costs.take(ds.val), ds.costs.take(ds.test)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(split.x, split.y), batch_size=s["batch_size"], shuffle=True
    )
    best: dict = {"value": float("inf")}

    def objective(trial: optuna.Trial) -> float:
        w = trial.suggest_float("pos_weight", s["low"], s["high"], log=True)
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(split.x.shape[1], s["hidden"]),
            torch.nn.ReLU(),
            torch.nn.Linear(s["hidden"], 1),
        ).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=s["lr"])
        loss_fn = SeedWeightedBCE(w)
        for _ in range(s["epochs"]):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(model(xb).squeeze(-1), yb).backward()
                opt.step()
        with torch.no_grad():
            val_pred = (model(split.x_val).squeeze(-1) >= 0).cpu().numpy()
            value = float(example_costs(y_val, val_pred, c_val).mean())
            if value < best["value"]:
                test_pred = (model(x_test).squeeze(-1) >= 0).cpu().numpy()
                best.update(value=value, w=w, test=example_costs(ds.y[ds.test], test_pred, c_test))
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    # Warm-up outside the clock: the first torch.optim.Adam in a process imports torch._dynamo
    # (about a second), a one-off a user's longer loop would amortise; timing it would flatter us.
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    seconds = time.perf_counter() - start
    return {
        "trials": n_trials,
        "seconds": seconds,
        "trials_per_second": n_trials / seconds,
        "pos_weight": best["w"],
        "test_cost": float(best["test"].mean()),
        "test_ci95": bootstrap_ci(best["test"], seed=0),
    }


def fnsearch_run(n_trials: int, extra: list[str]) -> dict:
    """`fnsearch search` end to end with the seed loop's settings; reads summary.json."""
    s = SEED_SETTINGS
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        sets = [
            f"model.hidden=[{s['hidden']}]",
            f"model.batch_size={s['batch_size']}",
            f"model.lr={s['lr']}",
            f"model.epochs={s['epochs']}",
            "model.weight_decay=0",  # the seed loop's Adam has none
            "model.patience=0",
            "search.folds=1",
            f"search.low={s['low']}",
            f"search.high={s['high']}",
            *extra,
        ]
        cmd = [
            sys.executable,
            "-m",
            "fnsearch",
            "search",
            str(SPEC),
            "--out",
            str(out),
            "--quiet",
            "--trials",
            str(n_trials),
        ]
        for item in sets:
            cmd += ["--set", item]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        summary = json.loads((out / "summary.json").read_text())
    t = summary["timing"]
    return {
        "trials": summary["trials"]["complete"],
        "seconds": t["seconds"],
        "trials_per_second": t["trials_per_second"],
        "pos_weight": summary["best"]["pos_weight"],
        "test_cost": summary["test"]["cost_per_example"],
        "test_ci95": summary["test"]["ci95"],
        "population": summary["search"]["population"],
    }


def part_seed(seed_trials: int, fn_trials: int, repeats: int) -> None:
    print(
        f"German credit, MLP hidden 32, batch 64, Adam lr 1e-3, 50 epochs, no early stopping, "
        f"torch threads {torch.get_num_threads()}; {repeats} interleaved repeats, medians"
    )
    # Interleaved, so a slow spell of this shared machine hits both sides alike.
    runs = [(seed_loop(seed_trials), fnsearch_run(fn_trials, [])) for _ in range(repeats)]
    ratios = sorted(fn["trials_per_second"] / seed["trials_per_second"] for seed, fn in runs)
    for name, side in (("seed loop", 0), ("fnsearch", 1)):
        results = sorted((r[side] for r in runs), key=lambda r: r["trials_per_second"])
        r = results[len(results) // 2]
        lo, hi = r["test_ci95"]
        rates = ", ".join(f"{x['trials_per_second']:.2f}" for x in results)
        print(
            f"  {name:<10} {r['trials']:>4} trials in {r['seconds']:7.2f} s = "
            f"{r['trials_per_second']:7.2f} trials/s (all: {rates}); chosen w "
            f"{r['pos_weight']:.3g}, test cost {r['test_cost']:.4f} (95% {lo:.4f}-{hi:.4f})"
        )
    print(
        f"  speed-up: {ratios[len(ratios) // 2]:.1f}x trials per second, median of "
        f"{', '.join(f'{x:.1f}' for x in ratios)} (fnsearch population {runs[0][1]['population']})"
    )


# --- scaling ---------------------------------------------------------------------------------


def scale_spec(path: str) -> dict:
    """The resampled German credit of the scaling rows (also bench/gpu.py's)."""
    return {"data": {"path": path, "label": "risk", "positive": "bad"}, "cost": {"fn": 5, "fp": 1}}


def scale_overrides(trials: int, device: str = "auto") -> dict:
    """All trials as one population, 2 epochs, batch 256, one validation split."""
    return {
        "study.n_trials": trials,
        "search.population": trials,
        "search.folds": 1,
        "model.epochs": 2,
        "model.patience": 0,
        "model.batch_size": 256,
        "model.device": device,
    }


def scale_child(path: str, trials: int) -> dict:
    """One row of the scaling table, in this (fresh) process: only fnsearch's own memory counts."""
    from fnsearch import tune

    result = tune(scale_spec(path), overrides=scale_overrides(trials))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    width = len(result.preprocessor.feature_names)
    rows = sum(result.data["rows"].values())
    return {
        "rows": rows,
        "features": width,
        "seconds_per_trial": result.timing["seconds"] / trials,
        "peak_rss_mib": rss_mib,
        "design_matrix_mib": rows * width * 4 / 2**20,
    }


def part_scale(sizes: list[int], trials: int) -> None:
    from fnsearch.datasets import load_builtin

    print(
        f"scaling: resampled German credit, {trials} trials as one population, 2 epochs, "
        "batch 256, one validation split; each row a fresh process"
    )
    print(
        f"  {'rows':>9} {'features':>8} {'s/trial':>8} {'s/trial/100k rows':>17} "
        f"{'peak RSS MiB':>12} {'X float32 MiB':>13} {'budget MiB':>10}"
    )
    frame = load_builtin("german_credit")
    with tempfile.TemporaryDirectory() as d:
        for rows in sizes:
            path = Path(d) / f"german_{rows}.parquet"
            frame.sample(n=rows, replace=True, random_state=0).to_parquet(path, index=False)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), "--trials", str(trials)],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            budget = 3 * r["design_matrix_mib"] + 1024
            print(
                f"  {rows:>9} {r['features']:>8} {r['seconds_per_trial']:>8.3f} "
                f"{r['seconds_per_trial'] / rows * 1e5:>17.3f} {r['peak_rss_mib']:>12.0f} "
                f"{r['design_matrix_mib']:>13.0f} {budget:>10.0f}"
            )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", choices=["seed", "scale", "all"], default="all")
    p.add_argument("--seed-trials", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trials", type=int, default=256)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(scale_child(args.child, args.trials)))
        return
    if args.part in ("seed", "all"):
        part_seed(args.seed_trials, args.trials, args.repeats)
    if args.part in ("scale", "all"):
        part_scale([int(s) for s in args.sizes.split(",")], 16)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

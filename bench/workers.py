"""Speed-up of several workers: the 64-trial German-credit study on 1 and on 2 workers.

    .venv/bin/python bench/workers.py                   # a throwaway PostgreSQL server (tests/pg.py)
    .venv/bin/python bench/workers.py --url postgresql://user:pw@host/postgres --repeats 3

Each run gets a fresh database and starts K processes of

    fnsearch worker studies/german_credit.toml --storage URL --set model.threads=1

at once (one torch thread each, so two workers use this machine's two cores without
oversubscribing them); for reference also one worker with two threads. "wall" is from starting
the processes to the last one exiting, as a user sees it (imports and data preparation included);
"trials" is from the first trial's start to the last trial's end as the database recorded them.
The configurations alternate within each repeat, so machine noise hits them alike; medians are
reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "studies" / "german_credit.toml"
CONFIGS = [(1, 1), (2, 1), (1, 2)]  # (workers, torch threads per worker)


def fresh_database(admin_url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    ) as conn:
        conn.autocommit = True
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def run(url: str, workers: int, threads: int) -> tuple[float, float, int]:
    """(wall seconds, trial-span seconds, complete trials) of one study on ``workers`` workers."""
    cmd = [sys.executable, "-m", "fnsearch", "worker", str(SPEC), "--storage", url, "-q"]
    cmd += ["--set", f"model.threads={threads}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a worker failed")
    wall = time.perf_counter() - start
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name="german_credit", storage=url).trials
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return wall, span.total_seconds(), sum(t.state.name == "COMPLETE" for t in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL URL whose user may create databases")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    server = None
    if args.url is None:
        sys.path.insert(0, str(ROOT))
        from tests.pg import PgServer

        server = PgServer().start()
        args.url = server.url()
    try:
        results: dict[tuple[int, int], list[tuple[float, float]]] = {c: [] for c in CONFIGS}
        for r in range(args.repeats):
            for k, threads in CONFIGS:
                wall, span, complete = run(fresh_database(args.url), k, threads)
                assert complete == 64, complete
                results[k, threads].append((wall, span))
                print(
                    f"repeat {r + 1}: {k} worker(s) x {threads} thread(s): "
                    f"wall {wall:6.2f} s, trials {span:6.2f} s",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
    print(f"64-trial German-credit study ({SPEC.name}), medians of {args.repeats}:")
    med = {c: [statistics.median(x[i] for x in v) for i in (0, 1)] for c, v in results.items()}
    for (k, threads), (wall, span) in med.items():
        print(f"  {k} worker(s) x {threads} thread(s): wall {wall:6.2f} s, trials {span:6.2f} s")
    one, two = med[1, 1], med[2, 1]
    print(
        f"  speed-up 1 -> 2 workers (1 thread each): wall {one[0] / two[0]:.2f}x, "
        f"trials {one[1] / two[1]:.2f}x"
    )


if __name__ == "__main__":
    main()

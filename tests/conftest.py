"""Shared fixtures: a fixed seed for every test, small real datasets, an in-process CLI runner."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fnsearch.cli import main
from fnsearch.datasets import load_builtin

from .pg import PgServer, ServerUnavailable

ROOT = Path(__file__).resolve().parents[1]

# Settings that keep a real search small enough for a unit test (seconds, not minutes).
FAST = {
    "study.n_trials": 6,
    "model.epochs": 8,
    "model.patience": 0,
    "search.folds": 1,
    "model.hidden": [8],
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server for the session. Without one the tests that need it are
    skipped - except when ``CI`` is set, where they must run, so a server that cannot start fails."""
    try:
        server = PgServer()
    except ServerUnavailable as e:
        _no_server(e)
    try:
        server.start()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as e:
        server.stop()
        _no_server(e)
    yield server
    server.stop()


def _no_server(error: BaseException) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the PostgreSQL tests must run, but: {error}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {error}")


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL (with password) of a fresh, empty database on the session's server."""
    return pg_server.new_database()


@pytest.fixture(scope="session")
def german() -> pd.DataFrame:
    return load_builtin("german_credit")


@pytest.fixture
def german_csv(tmp_path: Path, german: pd.DataFrame) -> Path:
    path = tmp_path / "german.csv"
    german.to_csv(path, index=False)
    return path


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def german_spec(tmp_path: Path, csv: Path | str = "builtin:german_credit", extra: str = "") -> Path:
    """A German-credit spec with fast settings; ``extra`` is appended TOML."""
    return write_spec(
        tmp_path / "spec.toml",
        f"""
[study]
name = "gc_test"
n_trials = 6
[data]
path = "{csv}"
label = "risk"
positive = "bad"
[cost]
fn = 5
fp = 1
[search]
folds = 1
[model]
epochs = 8
patience = 0
hidden = [8]
{extra}
""",
    )


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err

"""The command line: exit codes, one-line errors, and a real end-to-end run on German credit."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from fnsearch import tune

from .conftest import ROOT, german_spec, run_cli


@pytest.mark.parametrize(
    ("extra_args", "spec_extra", "match"),
    [
        ([], "[search]\nfolds = 1\nlow = 5.0\nhigh = 1.0\n", "must be below high"),
        (["--set", "model.epoch=3"], "", "did you mean 'epochs'"),
        (["--set", "model.epochs=ten"], "", "epochs must be an integer >= 1, got 'ten'"),
        (["--set", "data.positive=good_or_bad"], "", "positive label 'good_or_bad' does not occur"),
        (["--set", "data.label=nope"], "", "label column 'nope' is not in the data"),
        (["--set", "cost.fn='missing_col'"], "", "names column 'missing_col'"),
        (["--set", "study.n_trials=0"], "", "n_trials must be an integer >= 1"),
        (["--trials", "0"], "", "n_trials must be an integer >= 1"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, extra_args, spec_extra, match):
    """Check that a user mistake exits 2 with one stderr line, no traceback, no run folder."""
    spec = german_spec(tmp_path)
    if spec_extra:
        spec.write_text(spec.read_text().replace("[search]\nfolds = 1\n", spec_extra))
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "search", spec, "--out", out, *extra_args)
    assert code == 2, err
    assert match in err
    assert err.startswith("fnsearch: error:") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_spec_and_cuda_on_cpu(tmp_path, capsys):
    """Check a missing spec file and device = 'cuda' without CUDA both exit 2."""
    code, _, err = run_cli(capsys, "search", tmp_path / "none.toml")
    assert code == 2 and "does not exist" in err
    import torch

    if not torch.cuda.is_available():
        code, _, err = run_cli(
            capsys,
            "search",
            german_spec(tmp_path),
            "--set",
            "model.device=cuda",
            "--out",
            tmp_path / "r",
        )
        assert code == 2 and "sees no CUDA GPU" in err and not (tmp_path / "r").exists()


def test_all_trials_failing_exits_3_with_a_report(tmp_path, capsys):
    """Check exit code 3 when no trial completes, with summary and report still written."""
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        capsys,
        "search",
        german_spec(tmp_path),
        "--out",
        out,
        "--trials",
        "2",
        "--set",
        "search.low=1e36",
        "--set",
        "search.high=1e38",
        "--set",
        "model.lr=10.0",
    )
    assert code == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"] is None and summary["test"] is None
    assert "Every trial failed" in (out / "report.html").read_text()
    assert "no trial completed" in stdout


def test_predict_and_report_verbs(tmp_path, capsys, german):
    """Check predict to stdout and to a file, report rebuilding, and datasets."""
    out = tmp_path / "run"
    assert run_cli(capsys, "search", german_spec(tmp_path), "--out", out, "--quiet")[0] == 0
    rows = tmp_path / "rows.csv"
    german.head(7).drop(columns=["risk"]).to_csv(rows, index=False)
    code, stdout, _ = run_cli(capsys, "predict", out, rows)
    assert (
        code == 0 and stdout.splitlines()[0] == "score,decision" and len(stdout.splitlines()) == 8
    )
    code, _, _ = run_cli(capsys, "predict", out, rows, "--out", tmp_path / "s.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "s.csv")) == 7
    before = json.loads((out / "summary.json").read_text())
    (out / "report.html").unlink()
    code, stdout, _ = run_cli(capsys, "report", out)
    assert code == 0 and (out / "report.html").is_file()
    after = json.loads((out / "summary.json").read_text())
    assert after["best"] == before["best"] and after["test"] == before["test"]
    assert after["timing"] == before["timing"]  # a rebuild keeps the search it did not run
    code, stdout, _ = run_cli(capsys, "datasets")
    assert code == 0 and all(
        f"builtin:{n}" in stdout
        for n in ("german_credit", "churn_tv", "bank_marketing", "breast_cancer")
    )
    code, _, err = run_cli(capsys, "predict", tmp_path / "nowhere", rows)
    assert code == 2 and "not a run folder" in err


@pytest.mark.slow
def test_german_credit_end_to_end_cli_equals_tune(tmp_path):
    """Check the real CLI (python -m fnsearch) on the bundled German credit spec: the chosen policy
    beats flagging everybody on test, and tune() with the same seed picks the same trial."""
    out = tmp_path / "gc"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fnsearch",
            "search",
            str(ROOT / "studies" / "german_credit.toml"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["test"]["cost_per_example"]
        < summary["baselines"]["all_positive"]["cost_per_example"]
    )
    assert "report:" in proc.stdout
    result = tune(ROOT / "studies" / "german_credit.toml")
    assert result.best["trial"] == summary["best"]["trial"]
    assert result.best["pos_weight"] == pytest.approx(summary["best"]["pos_weight"])
    assert result.test["cost_per_example"] == pytest.approx(summary["test"]["cost_per_example"])


def test_out_that_is_a_file_and_a_changed_spec_in_shared_storage(tmp_path, capsys):
    """Check --out naming a file, and a changed spec against an existing storage study: exit 2,
    one line, and no run folder left behind."""
    spec = german_spec(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(capsys, "search", spec, "--out", afile / "run")
    assert code == 2 and "is a file, not a folder" in err and err.count("\n") == 1
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli(capsys, "search", spec, "--storage", url, "--out", tmp_path / "a", "-q")[0] == 0
    code, _, err = run_cli(
        capsys, "search", spec, "--storage", url, "--out", tmp_path / "b", "--set", "cost.fn=7"
    )
    assert code == 2 and "made with a different spec" in err and "study.name" in err
    assert not (tmp_path / "b").exists()


def test_default_run_folder_name_is_safe(tmp_path, capsys, monkeypatch):
    """Check that a study name with path characters cannot write outside runs/."""
    spec = german_spec(tmp_path)
    spec.write_text(spec.read_text().replace('name = "gc_test"', 'name = "a/../../escaped"'))
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "search", spec, "-q")[0] == 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["a_.._.._escaped"]
    assert not (tmp_path / "escaped").exists()


def test_report_on_a_missing_sqlite_file_creates_nothing(tmp_path, capsys):
    """Check that `report --storage` naming a missing SQLite file is exit 2 and creates no file."""
    url = f"sqlite:///{tmp_path / 'nothere.db'}"
    code, _, err = run_cli(
        capsys, "report", "--storage", url, "--study", "x", "--out", tmp_path / "r"
    )
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "nothere.db").exists() and not (tmp_path / "r").exists()

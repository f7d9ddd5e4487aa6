"""A corpus of hostile and messy inputs (issue 6): each gets a correct run or a one-line error.

Every input file is built here, in ``tmp_path``. Most cases go through the real CLI, so each one
asserts the exit code, that no traceback is shown, the key words of the message (what is wrong and
the fix) and that no run folder is left behind; a valid input asserts the positives per split and a
finite test cost. Searches are tiny (3 trials of 3 epochs): the corpus checks behaviour, not results.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from plotly.offline import get_plotlyjs

from fnsearch import tune
from fnsearch.data import prepare_dataset
from fnsearch.spec import load_spec

from .conftest import run_cli

# 300 rows with 75 positives split 60/20/20 give these positives per split.
POSITIVES_75 = {"train": 45, "val": 15, "test": 15}
TINY = """
[study]
name = "corpus"
n_trials = 3
[search]
folds = 1
[model]
epochs = 3
patience = 0
hidden = [4]
"""


def table(n: int = 300, n_pos: int = 75, pos: object = "yes", neg: object = "no") -> pd.DataFrame:
    """A small table: numeric ``a`` (carries the signal), text ``b``, integer ``c``, label ``y``."""
    rng = np.random.default_rng(0)
    y = np.zeros(n, dtype=bool)
    y[rng.permutation(n)[:n_pos]] = True
    return pd.DataFrame(
        {
            "a": (rng.normal(size=n) + 1.5 * y).round(3),
            "b": rng.choice(["x", "y", "z"], n),
            "c": rng.integers(0, 100, n),
            "y": np.where(y, pos, neg),
        }
    )


def spec(
    tmp_path: Path,
    data: str | Path,
    *,
    label: str = "y",
    positive: str = '"yes"',
    data_extra: str = "",
    cost: str = "fn = 5\nfp = 1",
    extra: str = "",
) -> Path:
    """A tiny spec for ``data``; ``positive`` is written as TOML (quote a string yourself)."""
    text = (
        f'[data]\npath = "{data}"\nlabel = "{label}"\npositive = {positive}\n{data_extra}\n'
        f"[cost]\n{cost}\n"
    )
    path = tmp_path / "spec.toml"
    path.write_text(_merge_toml(TINY, text + extra), encoding="utf-8")
    return path


def _merge_toml(base: str, extra: str) -> str:
    # Keys of `extra` replace those of `base` in the same section, so a case states only its change.
    sections: dict[str, dict[str, str]] = {}
    for text in (base, extra):
        section = ""
        for line in text.strip().splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("["):
                section = line
                sections.setdefault(section, {})
            else:
                key = line.split("=", 1)[0].strip()
                sections.setdefault(section, {})[key] = line
    return "\n".join(f"{s}\n" + "\n".join(keys.values()) for s, keys in sections.items()) + "\n"


def csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv", **options) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False, **options)
    return path


def refused(capsys, tmp_path: Path, spec_path: Path, *words: str, args: tuple = ()) -> str:
    """Run ``search``; check exit 2, one line naming the problem, no traceback, no run folder."""
    out = tmp_path / "refused"
    code, stdout, err = run_cli(capsys, "search", spec_path, "--out", out, "-q", *args)
    assert code == 2, err
    assert err.startswith("fnsearch: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + stdout
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    assert not out.exists()
    return err


def ran(capsys, tmp_path: Path, spec_path: Path, *args: str, out: Path | None = None) -> dict:
    """Run ``search`` into a fresh run folder (``tmp_path/run`` unless given); check exit 0, no
    traceback, a finite test cost; return summary.json."""
    if out is None:
        out = tmp_path / "run"
        shutil.rmtree(out, ignore_errors=True)  # a case's earlier run, made with another spec
    code, stdout, err = run_cli(capsys, "search", spec_path, "--out", out, "-q", *args)
    assert code == 0, err
    assert "Traceback" not in err + stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert math.isfinite(summary["test"]["cost_per_example"])
    return summary


# --- labels (the rule in DESIGN.md) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pos", "neg", "positive", "matched"),
    [
        ("2", "1", "2", "2"),  # labels 1/2, positive = 2 (a TOML number)
        ("0", "1", "0", "0"),  # the class of interest coded 0, and in the minority
        ("True", "False", "true", "True"),  # positive = true (a TOML boolean)
        ("1.0", "0.0", "1", "1.0"),  # floats, positive = 1: compared by value
        ("NA", "ok", '"NA"', "NA"),  # a class called "NA" is a label, not a missing cell
        ("None", "Some", '"None"', "None"),
    ],
    ids=["one-two", "zero-is-positive", "true-false", "float-labels", "class-NA", "class-None"],
)
def test_label_encodings_run_with_the_right_positives(
    capsys, tmp_path, pos, neg, positive, matched
):
    """Check that each label encoding runs and maps exactly the declared class to positive."""
    path = csv(tmp_path, table(pos=pos, neg=neg))
    summary = ran(capsys, tmp_path, spec(tmp_path, path, positive=positive))
    assert summary["data"]["positives"] == POSITIVES_75  # 75 of 300: the minority, not the rest
    assert summary["data"]["positive_label"] == matched


def test_text_labels_with_3_percent_positives(capsys, tmp_path):
    """Check yes/no labels with 3% positives (36 of 1200) run, every split getting its share."""
    path = csv(tmp_path, table(1200, 36))
    summary = ran(capsys, tmp_path, spec(tmp_path, path))
    assert summary["data"]["positives"] == {"train": 22, "val": 7, "test": 7}
    assert summary["data"]["rows"] == {"train": 720, "val": 240, "test": 240}


def test_parquet_boolean_labels(capsys, tmp_path):
    """Check a Parquet file whose label column is boolean, with positive = true."""
    frame = table()
    frame["y"] = frame["y"] == "yes"
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    summary = ran(capsys, tmp_path, spec(tmp_path, path, positive="true"))
    assert summary["data"]["positives"] == POSITIVES_75


def _with(frame: pd.DataFrame, rows: list[int], column: str, value) -> pd.DataFrame:
    frame = frame.astype({column: object})
    frame.loc[rows, column] = value
    return frame


@pytest.mark.parametrize(
    ("frame", "positive", "words"),
    [
        (
            _with(table(), [3, 10, 50], "y", None),
            '"yes"',
            ["'y' is empty in 3 of 300 row(s) (data rows 4, 11, 51)", "fill those cells or remove"],
        ),
        (
            _with(table(), [5], "y", "   "),  # a blank cell is as missing as an empty one
            '"yes"',
            ["'y' is empty in 1 of 300 row(s) (data row 6)", "does not guess labels"],
        ),
        (
            table(),
            '"maybe"',
            ["positive label 'maybe' does not occur in column 'y'", "its values are 'no', 'yes'"],
        ),
        (
            table(),
            '"Yes"',
            ["positive label 'Yes' does not occur", "compared exactly: write positive = 'yes'"],
        ),
        (
            table(pos="1.0", neg="0.0"),
            '"1"',
            ["positive label '1' does not occur", "write positive = 1 without quotes"],
        ),
        (
            table(pos="1", neg="0"),
            "true",
            ["positive label True does not occur", "for 0/1 labels write positive = 1"],
        ),
        (
            _with(table(), [150], "y", "maybe"),
            '"yes"',
            ["has 3 values ('maybe', 'no', 'yes')", "'maybe', is in 1 row(s) (data row 151)"],
        ),
        (
            table(n_pos=300),
            '"yes"',
            ["every row of label column 'y' is 'yes'", "no negatives"],
        ),
        (
            table(pos="1", neg="1.0"),
            "1",
            ["positive label 1 matches 2 values of 'y' ('1', '1.0')", "make the labels distinct"],
        ),
    ],
    ids=[
        "missing-cells",
        "blank-cell",
        "positive-never-occurs",
        "positive-wrong-case",
        "positive-quoted-number",
        "boolean-positive-on-0-1",
        "third-value",
        "all-one-class",
        "positive-matches-two",
    ],
)
def test_label_mistakes_are_refused(capsys, tmp_path, frame, positive, words):
    """Check every label the rule cannot map: exit 2, naming the values or rows and the fix."""
    refused(capsys, tmp_path, spec(tmp_path, csv(tmp_path, frame), positive=positive), *words)


def test_missing_label_column_suggests_a_near_miss(capsys, tmp_path):
    """Check that a label column spelt with spaces in the header is suggested."""
    path = csv(tmp_path, table().rename(columns={"y": " y "}))
    refused(capsys, tmp_path, spec(tmp_path, path), "label column 'y' is not in the data", "' y '")


# --- splits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_pos", "folds", "outcome"),
    [
        (
            23,
            1,
            [
                "the val split would get fewer than 5 positives",
                "of 23, train / val / test get 14 / 4 / 5",
                "change [data] val/test",
            ],
        ),
        (24, 1, {"train": 14, "val": 5, "test": 5}),
        (
            30,
            5,
            [
                "5-fold cross-validation would give some folds only 4 positives",
                "(of 24 in train+val)",
                "set [search] folds = 4 or lower",
            ],
        ),
        (31, 5, {"train": 19, "val": 6, "test": 6}),
    ],
    ids=["split-gets-4-refused", "split-gets-5-runs", "fold-gets-4-refused", "fold-gets-5-runs"],
)
def test_fewest_positives_boundary(capsys, tmp_path, n_pos, folds, outcome):
    """Check both sides of the 5-positives rule: with 4 in some split or fold it is refused before
    the study, with the counts; with 5 it runs."""
    s = spec(tmp_path, csv(tmp_path, table(300, n_pos)), extra=f"[search]\nfolds = {folds}")
    if isinstance(outcome, list):
        refused(capsys, tmp_path, s, *outcome)
    else:
        summary = ran(capsys, tmp_path, s)
        assert summary["data"]["positives"] == outcome
        assert summary["search"]["folds"] == folds


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", ["is empty", "give a CSV with a header row and data"]),
        ("\n\n\n", ["is empty"]),
        ("a,b,c,y\n", ["has a header but no rows"]),
        ("a,b,c,y", ["has a header but no rows"]),
    ],
    ids=["empty-file", "blank-lines", "header-only", "header-no-newline"],
)
def test_empty_data_is_refused(capsys, tmp_path, text, words):
    """Check empty and header-only files."""
    path = tmp_path / "data.csv"
    path.write_text(text)
    refused(capsys, tmp_path, spec(tmp_path, path), *words)


def test_too_few_positives_in_all(capsys, tmp_path):
    """Check that 12 positives (three splits need 15) are refused with the count."""
    path = csv(tmp_path, table(300, 12))
    refused(capsys, tmp_path, spec(tmp_path, path), "too few positive rows: 12 in all", "add data")


# --- CSV shapes --------------------------------------------------------------------------------


def _semicolons(tmp_path: Path) -> Path:
    return csv(tmp_path, table(), sep=";", decimal=",")


def test_semicolons_with_decimal_commas(capsys, tmp_path):
    """Check the sep hint, then the decimal hint, then a correct run once both are set."""
    path = _semicolons(tmp_path)
    refused(
        capsys,
        tmp_path,
        spec(tmp_path, path),
        "read as one column 'a;b;c;y'",
        "set [data] sep = ';'",
    )
    refused(
        capsys,
        tmp_path,
        spec(tmp_path, path, data_extra='sep = ";"'),
        "feature column 'a' holds numbers with decimal commas",
        "set [data] decimal = ','",
    )
    summary = ran(capsys, tmp_path, spec(tmp_path, path, data_extra='sep = ";"\ndecimal = ","'))
    assert summary["data"]["positives"] == POSITIVES_75
    pre = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert [c["name"] for c in pre["numeric"]] == ["a", "c"]  # read as numbers, not categories
    code, stdout, err = run_cli(capsys, "predict", tmp_path / "run", path)  # recorded sep, decimal
    assert code == 0 and len(stdout.splitlines()) == 301, err


def test_question_marks_and_blanks_as_missing(capsys, tmp_path):
    """Check '?' in a numeric column: refused with the hint, then run with na_values; blank cells
    are missing without being asked."""
    frame = _with(_with(table(), [1, 5], "a", "?"), [2, 7], "c", "")
    path = csv(tmp_path, frame)
    refused(
        capsys,
        tmp_path,
        spec(tmp_path, path),
        "feature column 'a' looks numeric but is read as text (e.g. '?')",
        "add '?' to [data] na_values",
    )
    summary = ran(capsys, tmp_path, spec(tmp_path, path, data_extra='na_values = ["?"]'))
    assert summary["data"]["positives"] == POSITIVES_75
    pre = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert [c["name"] for c in pre["numeric"]] == ["a", "c"]


def _formatted(fmt) -> pd.DataFrame:
    frame = table()
    return frame.assign(c=[fmt(v) for v in frame["c"]])


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (_formatted(lambda v: f"{v} kg"), ["feature column 'c'", "unit or symbol (e.g. '57 kg')"]),
        (_formatted(lambda v: f"${v * 1000:,}"), ["feature column 'c'", "(e.g. '$57,000')"]),
        (_formatted(lambda v: f"{v}%"), ["feature column 'c'", "(e.g. '57%')", "[data] drop"]),
        (
            _formatted(lambda v: f"{v * 100_000 + 7:,}"),
            ["feature column 'c'", "thousands separators (e.g. '5,700,007')", "thousands = ','"],
        ),
        (
            _formatted(lambda v: f"{v * 1000 + 1:,}"),  # '57,001' could be 57.001 or 57001
            ["numbers such as '57,001'", "thousands = ','", "decimal = ','"],
        ),
    ],
    ids=["unit", "currency", "percent", "thousands", "thousands-or-decimal"],
)
def test_numeric_looking_text_names_the_column_and_a_sample(capsys, tmp_path, frame, words):
    """Check that numbers written as text are refused naming the column and a sample value."""
    refused(capsys, tmp_path, spec(tmp_path, csv(tmp_path, frame)), *words)


def test_thousands_separators_read_as_numbers_once_declared(capsys, tmp_path):
    """Check that [data] thousands = ',' reads '5,700,007' as the number 5700007."""
    path = csv(tmp_path, _formatted(lambda v: f"{v * 100_000 + 7:,}"))
    summary = ran(capsys, tmp_path, spec(tmp_path, path, data_extra='thousands = ","'))
    assert summary["data"]["positives"] == POSITIVES_75
    pre = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    c = next(p for p in pre["numeric"] if p["name"] == "c")
    assert c["mean"] == pytest.approx(table()["c"].mean() * 100_000 + 7, rel=0.05)
    code, stdout, err = run_cli(capsys, "predict", tmp_path / "run", path)  # the recorded option
    assert code == 0 and len(stdout.splitlines()) == 301, err


def test_few_levels_with_units_stay_categories(capsys, tmp_path):
    """Check that a handful of levels such as '36 months' are a fair category, not refused."""
    frame = table().assign(c=lambda d: np.where(d["c"] < 50, "36 months", "60 months"))
    summary = ran(capsys, tmp_path, spec(tmp_path, csv(tmp_path, frame)))
    pre = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert {"name": "c", "categories": ["36 months", "60 months"]} in pre["categorical"]
    assert summary["data"]["positives"] == POSITIVES_75


def test_category_seen_only_in_test(tmp_path):
    """Check a category present only in one test row: unseen by the fitted preprocessing (all
    zeros), and the study still gives a finite test cost."""
    frame = table()
    path = csv(tmp_path, frame)
    overrides = {"study.final_refit": False}
    s = spec(tmp_path, path)
    test_row = int(prepare_dataset(load_spec(s)).test[0])  # the split depends on labels only
    frame.loc[test_row, "b"] = "only_in_test"
    csv(tmp_path, frame)
    result = tune(s, overrides=overrides)
    assert result.data["positives"] == POSITIVES_75
    assert "b=only_in_test" not in result.preprocessor.feature_names
    row = result.preprocessor.transform(frame.iloc[[test_row]])
    assert (
        row[0, [i for i, n in enumerate(result.preprocessor.feature_names) if "b=" in n]].sum() == 0
    )
    assert math.isfinite(result.test["cost_per_example"])


def test_huge_magnitudes_are_scaled_not_nan(capsys, tmp_path):
    """Check that features near 1e12 (and 1e300) train without a single non-finite loss."""
    frame = table().assign(a=lambda d: d["a"] * 1e12, c=lambda d: d["c"] * 1e300)
    summary = ran(capsys, tmp_path, spec(tmp_path, csv(tmp_path, frame)))
    assert summary["trials"] == {"complete": 3, "pruned": 0, "failed": 0}
    assert summary["data"]["positives"] == POSITIVES_75


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e400"], ids=["inf", "minus-inf", "overflow"])
def test_infinite_features_are_refused(capsys, tmp_path, cell):
    """Check inf (or a literal beyond float range) in a feature: refused with its rows."""
    path = csv(tmp_path, _with(table(), [3], "a", cell))
    refused(
        capsys,
        tmp_path,
        spec(tmp_path, path),
        "feature column 'a' holds infinite values in 1 row(s) (data row 4)",
        "[data] drop",
    )


def test_saved_index_column_is_refused_then_droppable(capsys, tmp_path):
    """Check a column with an empty header cell (pandas' saved index): refused, naming how to
    drop it; dropped, it runs."""
    path = tmp_path / "data.csv"
    table().to_csv(path)  # index=True: an unnamed first column 0..299
    refused(
        capsys,
        tmp_path,
        spec(tmp_path, path),
        "column 1 of the data has no name in the header (read as 'Unnamed: 0'",
        "add 'Unnamed: 0' to [data] drop",
    )
    summary = ran(capsys, tmp_path, spec(tmp_path, path, data_extra='drop = ["Unnamed: 0"]'))
    assert summary["data"]["positives"] == POSITIVES_75


def test_trailing_delimiter_on_every_line_runs(capsys, tmp_path):
    """Check a spreadsheet export ending every line with ',': its empty, unnamed last column
    carries nothing and is left out, so it runs."""
    path = csv(tmp_path, table())
    path.write_text(path.read_text().replace("\n", ",\n"))
    summary = ran(capsys, tmp_path, spec(tmp_path, path))
    assert summary["data"]["positives"] == POSITIVES_75 and summary["data"]["features"] == 3


def test_a_row_number_column_is_warned_about(capsys, tmp_path):
    """Check that a numeric column counting the rows runs (row order may be time) with a warning
    naming it and the fix, even with --quiet."""
    path = csv(tmp_path, table().assign(row=np.arange(1, 301)))
    code, _, err = run_cli(capsys, "search", spec(tmp_path, path), "--out", tmp_path / "run", "-q")
    assert code == 0 and "Traceback" not in err
    assert "fnsearch: feature column 'row' counts the rows (1, 2, 3, ...)" in err
    assert "list it in [data] drop" in err


@pytest.mark.parametrize(
    "column",
    [
        [f"id{i}" for i in range(300)],
        pd.date_range("2020-01-01", periods=300).strftime("%Y-%m-%d").tolist(),
    ],
    ids=["id", "date"],
)
def test_text_with_a_value_per_row_is_refused(capsys, tmp_path, column):
    """Check an id-like text column (one-hot would give a feature per row)."""
    path = csv(tmp_path, table().assign(key=column))
    refused(
        capsys,
        tmp_path,
        spec(tmp_path, path),
        "feature column 'key' has 300 distinct non-numeric values in 300 rows",
        "list it in [data] drop",
    )


def test_encodings(capsys, tmp_path):
    """Check latin-1 text (refused as not UTF-8, then read with encoding set) and UTF-16."""
    frame = table().assign(b=lambda d: d["b"].map({"x": "café", "y": "naïve", "z": "z"}))
    path = csv(tmp_path, frame, encoding="latin-1")
    refused(capsys, tmp_path, spec(tmp_path, path), "is not utf-8 text", "set [data] encoding")
    summary = ran(capsys, tmp_path, spec(tmp_path, path, data_extra='encoding = "latin-1"'))
    assert summary["data"]["positives"] == POSITIVES_75
    path = csv(tmp_path, frame, name="u16.csv", encoding="utf-16", sep="\t")
    refused(capsys, tmp_path, spec(tmp_path, path), "is UTF-16 text", "encoding = 'utf-16'")
    data = 'encoding = "utf-16"\nsep = "\\t"'
    summary = ran(capsys, tmp_path, spec(tmp_path, path, data_extra=data))
    assert summary["data"]["positives"] == POSITIVES_75


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"PK\x03\x04", ["is a ZIP archive (an Excel .xlsx workbook?)", "save it as CSV"]),
        (b"\xd0\xcf\x11\xe0", ["is an Excel .xls workbook", "save it as CSV"]),
        (b"PAR1", ["is a Parquet file", "give it a .parquet name"]),
    ],
    ids=["xlsx", "xls", "parquet-named-csv"],
)
def test_binary_files_named_csv(capsys, tmp_path, head, words):
    """Check that a spreadsheet or Parquet file given as CSV is named, not parsed as garbage."""
    path = tmp_path / "data.csv"
    path.write_bytes(head + bytes(range(256)) * 4)
    refused(capsys, tmp_path, spec(tmp_path, path), *words)


def test_ragged_row_names_the_line(capsys, tmp_path):
    """Check a row with one field too many: the parser's line number and the sep hint."""
    path = csv(tmp_path, table())
    path.write_text(path.read_text() + "1,x,3,yes,extra\n")
    refused(capsys, tmp_path, spec(tmp_path, path), "line 302, saw 5", "check [data] sep")


# --- costs -------------------------------------------------------------------------------------


def _costs(**columns) -> pd.DataFrame:
    return table().assign(**columns)


@pytest.mark.parametrize(
    ("frame", "cost", "words"),
    [
        (table(), "fn = 0\nfp = 1", ["[cost] fn (0) must exceed tp (0)"]),
        (table(), "fn = -1\nfp = 1", ["[cost] fn must be a number from 0 to 1e+15", "got -1"]),
        (table(), "fn = 5\nfp = 0", ["[cost] fp (0) must exceed tn (0)"]),
        (table(), "fn = 2\nfp = 1\ntp = 3", ["fn (2) must exceed tp (3)", "no cheaper caught"]),
        (table(), "fn = 1e308\nfp = 1", ["[cost] fn must be a number from 0 to 1e+15"]),
        (
            table(),
            "fn = 1e14\nfp = 1e-3",
            ["missed positive 1e+17 times as costly as a false alarm", "check the units"],
        ),
        (
            _with(_costs(cfn=5.0), [4], "cfn", None),
            'fn = "cfn"\nfp = 1',
            ["cost column 'cfn' is empty in 1 row(s) (data row 5)", "give every row a cost"],
        ),
        (
            _with(_costs(cfn=5.0), [4], "cfn", "five"),
            'fn = "cfn"\nfp = 1',
            ["cost column 'cfn' holds text such as 'five' in 1 row(s) (data row 5)"],
        ),
        (
            _with(_costs(cfn=5.0), [4, 9], "cfn", -2.0),
            'fn = "cfn"\nfp = 1',
            ["cost column 'cfn' is negative in 2 row(s) (data rows 5, 10)", "costs must be >= 0"],
        ),
        (
            _with(_costs(cfn=5.0), [0], "cfn", 1e20),
            'fn = "cfn"\nfp = 1',
            ["cost column 'cfn' exceeds 1e+15 in 1 row(s)", "larger units"],
        ),
        (
            _costs(cfn=0.0),
            'fn = "cfn"\nfp = 1',
            ["C_TP >= C_FN in 300 row(s)", "a positive is no cheaper caught than missed"],
        ),
        (
            _costs(c_fn=5.0),
            'fn = "C_FN"\nfp = 1',
            ["[cost] fn names column 'C_FN', which is not in the data", "did you mean 'c_fn'?"],
        ),
        (table(), 'fn = "y"\nfp = 1', ["[cost] fn names the label column 'y'"]),
        (table(), 'fn = "5"\nfp = 1', ["names column '5'", "write fn = 5 without quotes"]),
        (
            _costs(cfn=2.0, ctp=3.0),
            'fn = "cfn"\nfp = 1\ntp = "ctp"',
            ["C_TP >= C_FN in 300 row(s)", "a positive is no cheaper caught than missed"],
        ),
    ],
    ids=[
        "fn-zero",
        "fn-negative",
        "fp-zero",
        "tp-above-fn",
        "fn-1e308",
        "ratio-1e17",
        "column-missing-value",
        "column-text",
        "column-negative",
        "column-1e20",
        "column-all-zero",
        "column-does-not-exist",
        "column-is-the-label",
        "quoted-number",
        "column-tp-above-fn",
    ],
)
def test_cost_mistakes_are_refused(capsys, tmp_path, frame, cost, words):
    """Check costs that make no sense: exit 2, naming the key, column or rows and the fix."""
    refused(capsys, tmp_path, spec(tmp_path, csv(tmp_path, frame), cost=cost), *words)


def test_cost_column_with_decimal_commas(capsys, tmp_path):
    """Check that '5,5' in a cost column of a ';' file points at [data] decimal."""
    path = csv(tmp_path, _costs(cfn="5,5"), sep=";")
    s = spec(tmp_path, path, data_extra='sep = ";"', cost='fn = "cfn"\nfp = 1')
    refused(capsys, tmp_path, s, "cost column 'cfn' holds text such as '5,5'", "decimal = ','")


# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("[model]\nepoch = 3", ["unknown key [model] epoch; did you mean 'epochs'?"]),
        ("[modle]\nepochs = 3", ["unknown section [modle]; did you mean 'model'?"]),
        ('[model]\nepochs = "ten"', ["[model] epochs must be an integer >= 1, got 'ten'"]),
        ("[model]\nbatch_size = 32.0", ["[model] batch_size must be an integer >= 1, got 32.0"]),
        ("[search]\nlow = 5\nhigh = 5", ["[search] low (5) must be below high (5)"]),
        ("[search]\nlow = 0\nhigh = 5", ['[search] low must be "auto" or a number > 0, got 0']),
        ("[search]\nlow = -1", ["[search] low must be"]),
        ("[search]\nhigh = 0.01", ["[search] low (0.1) must be below high (0.01)"]),
        ("[study]\nn_trials = 0", ["[study] n_trials must be an integer >= 1, got 0"]),
        ('[search]\nsampler = "random"', ["sampler must be one of 'tpe', 'gp', 'grid'"]),
        ('[data]\nthousands = "."\ndecimal = "."', ["thousands and decimal are both '.'"]),
        ("[model]\ndevice = 'gpu'", ["[model] device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"]),
    ],
    ids=[
        "typo-key",
        "typo-section",
        "epochs-ten",
        "batch-size-float",
        "low-equals-high",
        "low-zero",
        "low-negative",
        "high-below-auto-low",
        "n-trials-zero",
        "unknown-sampler",
        "thousands-is-decimal",
        "unknown-device",
    ],
)
def test_spec_mistakes_are_refused(capsys, tmp_path, extra, words):
    """Check spec mistakes: exit 2 with the key, what is allowed (or the suggestion) and no run."""
    path = csv(tmp_path, table())
    refused(capsys, tmp_path, spec(tmp_path, path, extra=extra), *words)


def test_command_line_mistakes(capsys, tmp_path):
    """Check --trials 0, an empty --out (an unset shell variable), a bad --set, and a folder given
    as the spec."""
    s = spec(tmp_path, csv(tmp_path, table()))
    refused(capsys, tmp_path, s, "n_trials must be an integer >= 1", args=("--trials", "0"))
    refused(capsys, tmp_path, s, "must look like section.key=value", args=("--set", "epochs"))
    for empty in ("", " "):
        code, _, err = run_cli(capsys, "search", s, "--out", empty, "-q")
        assert code == 2 and "--out is empty" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "spec.toml"]
    code, _, err = run_cli(capsys, "search", tmp_path, "-q")
    assert code == 2 and "is a folder, not a TOML file" in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[data]\npath = "x.csv"\nlabel = y\n', ["is not valid TOML", "(at line 3, column 9)"]),
        ('[data]\npath = "x.csv"\n[data]\nlabel = "y"\n', ["is not valid TOML", "line 3"]),
        ('[data]\npath = "x.csv"\npath = "y.csv"\n', ["is not valid TOML", "line 3"]),
    ],
    ids=["bare-word", "section-twice", "key-twice"],
)
def test_toml_syntax_errors_give_the_line(capsys, tmp_path, text, words):
    """Check TOML syntax errors name the file and the line."""
    path = tmp_path / "spec.toml"
    path.write_text(text)
    refused(capsys, tmp_path, path, "spec.toml", *words)


# --- devices -----------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_on_a_cpu_machine(capsys, tmp_path, device):
    """Check that an explicit CUDA device on a CPU-only machine is a clear error."""
    s = spec(tmp_path, csv(tmp_path, table()), extra=f'[model]\ndevice = "{device}"')
    refused(capsys, tmp_path, s, f"device = '{device}' but this torch build sees no CUDA GPU")


def test_auto_device_notes_the_fallback(capsys, tmp_path):
    """Check device = 'auto': on a machine without CUDA it runs on the CPU and says why."""
    s = spec(tmp_path, csv(tmp_path, table()), extra='[model]\ndevice = "auto"')
    code, _, err = run_cli(capsys, "search", s, "--out", tmp_path / "run")
    assert code == 0 and "Traceback" not in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    if torch.cuda.is_available():
        assert summary["timing"]["device"] == "cuda:0" and "on cuda:0" in err
    else:
        assert summary["timing"]["device"] == "cpu"
        assert "on cpu (device auto: no CUDA GPU visible)" in err


# --- trials ------------------------------------------------------------------------------------


def test_diverging_weights_fail_with_a_reason_and_the_study_goes_on(capsys, tmp_path):
    """Check weights so large that training diverges: those trials fail with the reason, the
    others complete, and the report lists the failures."""
    extra = "[study]\nn_trials = 6\n[search]\nlow = 1.0\nhigh = 1e38\n[model]\nlr = 1.0"
    summary = ran(capsys, tmp_path, spec(tmp_path, csv(tmp_path, table()), extra=extra))
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    failed = trials[trials["state"] == "fail"]
    assert summary["trials"]["complete"] == 6 and summary["trials"]["failed"] == len(failed) > 0
    assert failed["fail_reason"].str.startswith("training diverged at epoch").all()
    assert (failed["pos_weight"] > 1e6).all()  # it is the huge weights that diverge
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.count("training diverged at epoch") >= len(failed)


def test_every_trial_failing_writes_the_report_and_says_so(capsys, tmp_path):
    """Check exit 3 when no trial completes: summary and report written, best and test null."""
    extra = "[search]\nlow = 1e36\nhigh = 1e38\n[model]\nlr = 10.0"
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        capsys, "search", spec(tmp_path, csv(tmp_path, table()), extra=extra), "--out", out, "-q"
    )
    assert code == 3 and "Traceback" not in err and "no trial completed" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"] is None and summary["test"] is None
    assert summary["trials"] == {"complete": 0, "pruned": 0, "failed": 3}
    html = (out / "report.html").read_text()
    assert "Every trial failed" in html and "training diverged at epoch" in html
    assert not (out / "model.pt").exists()


def test_a_single_trial(capsys, tmp_path):
    """Check --trials 1: one complete trial, chosen, with a finite test cost."""
    s = spec(tmp_path, csv(tmp_path, table()))
    summary = ran(capsys, tmp_path, s, "--trials", "1")
    assert summary["trials"] == {"complete": 1, "pruned": 0, "failed": 0}
    assert summary["best"]["trial"] == 0 and summary["data"]["positives"] == POSITIVES_75


# --- report safety and paths -------------------------------------------------------------------

SCRIPT = "<script>alert('x')</script>"


def test_html_in_names_labels_and_study_is_shown_as_text(capsys, tmp_path):
    """Check that column names, label values and a study name holding HTML never reach the report
    as markup: the only <script> elements are fnsearch's own two."""
    frame = table(pos="<script>alert('pos')</script>", neg="<i>neg</i>")
    frame = frame.rename(columns={"a": SCRIPT, "y": "<b>label</b>"})
    frame["b"] = frame["b"].map({"x": SCRIPT, "y": "y", "z": "z"})
    path = csv(tmp_path, frame)
    s = spec(
        tmp_path,
        path,
        label="<b>label</b>",
        positive="\"<script>alert('pos')</script>\"",
        extra="[study]\nname = \"<script>alert('study')</script>\"",
    )
    summary = ran(capsys, tmp_path, s)
    assert summary["data"]["positives"] == POSITIVES_75
    html = (tmp_path / "run" / "report.html").read_text()
    page = html.replace(get_plotlyjs(), "")
    assert len(re.findall(r"<script", page, flags=re.I)) == 2
    for raw in (SCRIPT, "<script>alert('pos')", "<script>alert('study')", "<b>label", "<i>neg"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#x27;study&#x27;)" in page
    assert "&lt;b&gt;label&lt;/b&gt;" in page


def test_paths_with_spaces_and_non_ascii(capsys, tmp_path, monkeypatch):
    """Check spaces and non-ASCII in the spec, data and run folder paths and the study name:
    search, predict and report all work, and the default run folder keeps the letters."""
    home = tmp_path / "mes données 名前"
    (home / "dätä dir").mkdir(parents=True)
    data = csv(home / "dätä dir", table(), name="my data é.csv")
    s = home / "spéc file.toml"
    s.write_text(
        _merge_toml(
            TINY,
            '[study]\nname = "étude ü"\n[data]\npath = "dätä dir/my data é.csv"\nlabel = "y"\n'
            'positive = "yes"\n[cost]\nfn = 5\nfp = 1',
        ),
        encoding="utf-8",
    )
    out = home / "rün out"
    summary = ran(capsys, tmp_path, s, out=out)
    assert summary["data"]["positives"] == POSITIVES_75
    code, stdout, err = run_cli(capsys, "predict", out, data)
    assert code == 0 and len(stdout.splitlines()) == 301 and "Traceback" not in err
    assert run_cli(capsys, "report", out, "-q")[0] == 0
    monkeypatch.chdir(home)
    assert run_cli(capsys, "search", "spéc file.toml", "-q")[0] == 0
    assert [p.name for p in (home / "runs").iterdir()] == ["étude_ü"]


# --- run folders and model files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """One finished run folder and its data, copied by each case that damages it."""
    base = tmp_path_factory.mktemp("corpus_run")
    data = csv(base, table())
    out = base / "run"
    tune(spec(base, data), out=out)
    return out, data


def _damaged(run_folder, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "damaged"
    shutil.copytree(run_folder[0], copy)
    damage(copy)
    return copy


def _predict_refused(capsys, folder: Path, data: Path, *words: str) -> None:
    code, stdout, err = run_cli(capsys, "predict", folder, data)
    assert code == 2, err
    assert err.startswith("fnsearch: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and stdout == ""
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"


def _state(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", weights_only=True)


def _save(folder: Path, state) -> None:
    torch.save(state, folder / "model.pt")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (
            lambda d: (d / "model.pt").write_bytes((d / "model.pt").read_bytes()[:200]),
            ["model.pt' is not a valid fnsearch model", "rebuild it with `fnsearch report"],
        ),
        (lambda d: (d / "model.pt").write_bytes(b""), ["is not a valid fnsearch model"]),
        (lambda d: (d / "model.pt").unlink(), ["model.pt' is missing", "fnsearch report"]),
        (lambda d: _save(d, {}), ["is not a valid fnsearch model (unexpected keys []"]),
        (lambda d: _save(d, [torch.zeros(3)]), ["does not hold a state_dict of tensors"]),
        (
            lambda d: _save(d, {k: v * float("nan") for k, v in _state(d).items()}),
            ["layer 0 holds non-finite parameters"],
        ),
        (
            lambda d: _save(d, {k: v[:1] for k, v in _state(d).items()}),
            ["is not a valid fnsearch model (layer 1 has shapes"],
        ),
        (
            lambda d: (d / "preprocessing.json").write_text('{"numeric": [{"name": "a"}]}'),
            ["preprocessing.json' is missing or corrupt"],
        ),
        (
            lambda d: (d / "summary.json").write_text('{"spec": {}, "best": {"threshold": "x"}}'),
            ["summary.json' has no finite best.threshold"],
        ),
        (lambda d: (d / "summary.json").write_text("[]"), ["is not an fnsearch summary"]),
        (lambda d: (d / "summary.json").write_text("{"), ["summary.json' is corrupt"]),
    ],
    ids=[
        "truncated",
        "empty",
        "missing",
        "no-layers",
        "not-a-dict",
        "nan-parameters",
        "wrong-shapes",
        "preprocessing",
        "threshold-text",
        "summary-list",
        "summary-broken",
    ],
)
def test_damaged_run_folders_give_one_line(capsys, tmp_path, run_folder, damage, words):
    """Check that a truncated or tampered run folder is exit 2 naming the file, never a crash or a
    score from a broken model."""
    _predict_refused(capsys, _damaged(run_folder, tmp_path, damage), run_folder[1], *words)


def test_loading_a_run_folder_never_executes_code(capsys, tmp_path, run_folder):
    """Check that a model.pt pickling a call is refused by weights_only: the call never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    folder = _damaged(run_folder, tmp_path, lambda d: _save(d, {"0.weight": Payload()}))
    _predict_refused(capsys, folder, run_folder[1], "is not a valid fnsearch model")
    assert not marker.exists()


def test_torn_and_damaged_study_files(capsys, tmp_path, run_folder):
    """Check a journal cut mid-entry (a crash while writing): the torn entry is dropped with a
    warning and the study resumes; a damaged line is a one-line error; a corrupt summary.json is
    rebuilt by `report`."""
    s = spec(tmp_path, run_folder[1])
    torn = _damaged(
        run_folder,
        tmp_path,
        lambda d: (d / "study.log").write_bytes((d / "study.log").read_bytes()[:-40]),
    )
    code, _, err = run_cli(capsys, "search", s, "--out", torn, "-q", "--trials", "4")
    assert code == 0 and "partly written entry" in err and "Traceback" not in err
    assert json.loads((torn / "summary.json").read_text())["trials"]["complete"] == 4
    shutil.rmtree(torn)
    bad = _damaged(run_folder, tmp_path, lambda d: (d / "study.log").write_text("garbage\n"))
    code, _, err = run_cli(capsys, "search", s, "--out", bad, "-q")
    assert code == 2 and "study.log is damaged" in err and "move it away" in err
    shutil.rmtree(bad)
    broken = _damaged(run_folder, tmp_path, lambda d: (d / "summary.json").write_text("{"))
    assert run_cli(capsys, "report", broken, "-q")[0] == 0
    assert json.loads((broken / "summary.json").read_text())["best"] is not None


def test_predict_outputs_and_inputs(capsys, tmp_path, run_folder):
    """Check predict --out into a missing folder or onto a folder, and DATA that is a folder:
    exit 2 with one line, nothing written."""
    folder, data = run_folder
    for out, words in (
        (tmp_path / "no" / "such" / "s.csv", "the folder"),
        (tmp_path, "is a folder; give a file name"),
    ):
        code, stdout, err = run_cli(capsys, "predict", folder, data, "--out", out)
        assert code == 2 and words in err and "Traceback" not in err and stdout == ""
    assert not (tmp_path / "no").exists()
    code, _, err = run_cli(capsys, "predict", folder, tmp_path)
    assert code == 2 and "is a folder, not a file; check the DATA argument" in err


def test_unwritable_run_folder_is_found_before_the_search(capsys, tmp_path, monkeypatch):
    """Check that a run folder that cannot be written is refused before any training."""
    s = spec(tmp_path, csv(tmp_path, table()))
    monkeypatch.setattr("fnsearch.api.os.access", lambda path, mode: False)
    refused(capsys, tmp_path, s, "cannot write in", "choose another run folder")

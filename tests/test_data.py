"""Reading, label mapping, cost columns, splits and preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fnsearch.data import Preprocessor, map_labels, prepare_dataset
from fnsearch.errors import CostError, DataError
from fnsearch.spec import load_spec


def spec_for(path, label="y", positive=1, cost=None, **data):
    return load_spec(
        {
            "data": {"path": str(path), "label": label, "positive": positive, **data},
            "cost": cost or {"fn": 5, "fp": 1},
        }
    )


def frame(n=400, pos_rate=0.25, labels=(1, 0), seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < pos_rate
    y[: int(n * pos_rate)] = True  # enough positives whatever the draw
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.choice(["x", "y", "z"], n),
            "y": np.where(y, labels[0], labels[1]),
        }
    )


@pytest.mark.parametrize(
    ("raw", "positive", "expected_positive_label"),
    [
        (["yes", "no", " yes ", "no"], "yes", "yes"),
        (["1", "2", "2", "1"], 2, "2"),
        (["0", "1", "1", "1"], 0, "0"),  # class of interest coded 0
        (["True", "False", "False", "True"], True, "True"),
        (["0.0", "1.0", "1.0", "0.0"], 1, "1.0"),  # floats match the integer by value
        (["malignant", "benign", "benign", "malignant"], "malignant", "malignant"),
    ],
)
def test_labels_map_only_through_the_positive_value(raw, positive, expected_positive_label):
    """Check the DESIGN.md rule: text after stripping, by value for TOML numbers and booleans."""
    y, matched, _ = map_labels(pd.Series(raw, name="y"), positive)
    assert matched == expected_positive_label
    want = [1 if (str(v).strip() == expected_positive_label) else 0 for v in raw]
    assert y.tolist() == want


@pytest.mark.parametrize(
    ("raw", "positive", "match"),
    [
        (["a", "b", "c"], "a", r"has 3 values \('a', 'b', 'c'\); fnsearch needs exactly two"),
        (
            ["a", "b"],
            "z",
            r"positive label 'z' does not occur in column 'y'; its values are 'a', 'b'",
        ),
        (["1.0", "0.0"], "1", r"write positive = 1 without quotes"),
        (["a", "a"], "a", r"no negatives"),
        (["a", None, "b"], "a", r"empty in 1 of 3 row\(s\) \(data row 2\)"),
    ],
)
def test_label_mistakes(raw, positive, match):
    """Check that label problems are DataErrors that list the values."""
    with pytest.raises(DataError, match=match):
        map_labels(pd.Series(raw, name="y"), positive)


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    """Check 60/20/20 stratified splits, disjoint, the same for the same seed."""
    path = tmp_path / "d.csv"
    frame(1000).to_csv(path, index=False)
    a = prepare_dataset(spec_for(path))
    b = prepare_dataset(spec_for(path))
    assert a.counts("rows") == {"train": 600, "val": 200, "test": 200}
    assert np.array_equal(a.test, b.test)
    assert not set(a.train) & set(a.val) and not set(a.val) & set(a.test)
    rates = [a.y[s].mean() for s in (a.train, a.val, a.test)]
    assert max(rates) - min(rates) < 0.01
    # cross-validation folds partition train + val
    oof = np.sort(np.concatenate([va for _, va in a.folds]))
    assert np.array_equal(oof, np.sort(a.pool)) and len(a.folds) == 5


def test_too_few_positives_names_the_counts(tmp_path):
    """Check that a split with under 5 positives is refused with the counts, before any training."""
    df = frame(400, pos_rate=0.02)
    df.loc[:, "y"] = 0
    df.loc[:11, "y"] = 1  # 12 positives: some split gets under 5
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"too few positive rows: 12 in all"):
        prepare_dataset(spec_for(path))


def test_preprocessing_is_fitted_on_train_rows_only():
    """Check standardisation uses training statistics, imputes medians, zeros unseen categories."""
    train = pd.DataFrame({"n": [1.0, 2.0, 3.0, np.nan], "c": ["a", "b", "a", None]})
    pre = Preprocessor.fit(train)
    assert pre.feature_names == ["n", "c=<missing>", "c=a", "c=b"]
    out = pre.transform(pd.DataFrame({"n": [2.0, np.nan, 100.0], "c": ["b", "zzz", "a"]}))
    filled = np.array([1.0, 2.0, 3.0, 2.0])
    assert out[0, 0] == pytest.approx((2.0 - filled.mean()) / filled.std())
    assert out[1, 0] == out[0, 0]  # missing -> training median (2.0)
    assert out[1, 1:].tolist() == [0, 0, 0]  # unseen category -> all zeros
    assert out[2, 1:].tolist() == [0, 1, 0] and out[0, 1:].tolist() == [0, 0, 1]
    assert Preprocessor.from_dict(pre.to_dict()) == pre


def test_drop_and_cost_columns_are_not_features(tmp_path):
    """Check that drop and per-example cost columns never become features."""
    df = frame(500)
    df["row_id"] = range(500)
    df["c_fn"] = 4.0
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    ds = prepare_dataset(spec_for(path, drop=["row_id"], cost={"fn": "c_fn", "fp": 1}))
    assert list(ds.features.columns) == ["a", "b"]
    assert ds.costs.fn.tolist() == [4.0] * 500


@pytest.mark.parametrize(
    ("mutate", "cost", "error", "match"),
    [
        (lambda d: d, {"fn": "nope", "fp": 1}, CostError, r"names column 'nope', which is not in"),
        (
            lambda d: d.assign(c=[np.nan] + [1.0] * (len(d) - 1)),
            {"fn": "c", "fp": 1},
            CostError,
            r"cost column .c. is empty in 1 row\(s\) \(data row 1\)",
        ),
        (lambda d: d.assign(c=-1.0), {"fn": "c", "fp": 1}, CostError, r"negative"),
        (
            lambda d: d.assign(c=0.5),
            {"fn": "c", "fp": 1, "tp": 1},
            CostError,
            r"C_TP >= C_FN in \d+ row\(s\).*no cheaper caught than missed",
        ),
        (
            lambda d: d.assign(c=[1.0] + [2.0] * (len(d) - 1)),
            {"fn": "c", "fp": 1, "tp": 1},
            CostError,
            r"C_TP >= C_FN in 1 row\(s\) \(data row 1\)",
        ),
        (
            lambda d: d.assign(c=[0.0, 1.0] + [0.0] * (len(d) - 2)),
            {"fn": 5, "fp": 1, "tn": "c"},
            CostError,
            r"C_TN >= C_FP in 1 row\(s\) \(data row 2\): a negative is no cheaper passed",
        ),
    ],
)
def test_cost_column_mistakes(tmp_path, mutate, cost, error, match):
    """Check that bad cost columns are refused, naming the column or rows."""
    path = tmp_path / "d.csv"
    mutate(frame(300)).to_csv(path, index=False)
    with pytest.raises(error, match=match):
        prepare_dataset(spec_for(path, cost=cost))


def test_csv_shape_hints(tmp_path):
    """Check the sep hint for ';' files and the decimal hint for decimal commas."""
    df = frame(300)
    path = tmp_path / "semi.csv"
    df.to_csv(path, sep=";", index=False)
    with pytest.raises(DataError, match=r"set \[data\] sep = ';'"):
        prepare_dataset(spec_for(path))
    df["a"] = df["a"].map(lambda v: f"{v:.3f}".replace(".", ","))
    df.to_csv(path, sep=";", index=False)
    with pytest.raises(DataError, match=r"decimal = ','"):
        prepare_dataset(spec_for(path, sep=";"))
    ds = prepare_dataset(spec_for(path, sep=";", decimal=","))
    assert pd.api.types.is_float_dtype(ds.features["a"])


def test_missing_file_and_label(tmp_path):
    """Check that a missing file and a missing label column are named."""
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset(spec_for(tmp_path / "none.csv"))
    path = tmp_path / "d.csv"
    frame(300).to_csv(path, index=False)
    with pytest.raises(
        DataError, match=r"label column 'target' is not in the data; columns are 'a'"
    ):
        prepare_dataset(spec_for(path, label="target"))


def test_parquet_and_builtins(tmp_path):
    """Check Parquet input and every builtin dataset's positives."""
    path = tmp_path / "d.parquet"
    frame(300).to_parquet(path)
    assert prepare_dataset(spec_for(path)).y.sum() > 0
    expected = {
        "german_credit": ("risk", "bad", 300, "bad"),
        "breast_cancer": ("diagnosis", "malignant", 212, "malignant"),
        "churn_tv": ("target", 1, 449, "1.0"),
        "bank_marketing": ("y", "yes", 5289, "yes"),
        "synthetic": ("y", 1, 527, "1"),
    }
    for name, (label, positive, n_pos, raw) in expected.items():
        ds = prepare_dataset(spec_for(f"builtin:{name}", label=label, positive=positive))
        assert int(ds.y.sum()) == n_pos and ds.positive_label == raw


def test_bank_marketing_costs_are_computed_on_load():
    """Check the literature costs: C_FP = C_TP = 1, C_FN = max(0.25 * 0.0246 * balance, 1), C_TN = 0."""
    from fnsearch.datasets import load_builtin

    bank = load_builtin("bank_marketing")
    assert (bank["C_FP"] == 1).all() and (bank["C_TP"] == 1).all() and (bank["C_TN"] == 0).all()
    expected = np.maximum(0.25 * 0.0246 * bank["balance"].to_numpy(dtype=float), 2.0)
    np.testing.assert_allclose(bank["C_FN"], expected)
    assert (bank["balance"] < 0).any()


def test_huge_finite_values_standardise_without_overflow():
    """Check that values near 1e200 get a finite scale (their squares would overflow)."""
    pre = Preprocessor.fit(pd.DataFrame({"n": [1e200, -3e199, 5e199, 0.0]}))
    assert np.isfinite(pre.numeric[0]["scale"]) and pre.numeric[0]["scale"] > 0
    assert np.isfinite(pre.transform(pd.DataFrame({"n": [1e200]}))).all()


def test_multi_character_sep_warns_nothing(tmp_path):
    """Check that a multi-character sep reads without pandas' engine warning reaching the user."""
    import warnings

    path = tmp_path / "d.csv"
    frame(300).to_csv(path, sep=";", index=False)
    path.write_text(path.read_text().replace(";", ";;"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = prepare_dataset(spec_for(path, sep=";;"))
    assert list(ds.features.columns) == ["a", "b"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["0,439", "-1,25", "3,5"],
            "decimal commas (e.g. '0,439'), read as text; set [data] decimal = ','",
        ),
        (
            ["1,234,567", "12,000"],
            "thousands separators (e.g. '1,234,567'), read as text; set [data] thousands = ','",
        ),
        (
            ["1.234,5", "2,25"],
            "set [data] thousands = '.' and decimal = ','",
        ),
        (
            ["57,000", "12,500"],
            "if ',' separates thousands set [data] thousands = ','; if it is the decimal mark",
        ),
        ([f"{v} kg" for v in range(20)], "unit or symbol (e.g. '0 kg')"),
        ([f"{v}%" for v in range(20)], "unit or symbol (e.g. '0%')"),
        ([f"{v},50 €" for v in range(20)], "unit or symbol (e.g. '0,50 €')"),
        (["36 months", "60 months"] * 10, None),  # a few levels: a category
        (["A11", "A12", "A14"] * 10, None),  # codes, not numbers
        ([f"{v}B" for v in range(20)], None),  # flat numbers such as '12B' are codes too
        (
            [*map(str, range(19)), "?"],
            "looks numeric but is read as text (e.g. '?'); add '?' to [data] na_values",
        ),
    ],
)
def test_numeric_text_gets_the_fix_that_reads_it(values, expected):
    """Check which fix each way of writing numbers as text is told (None: a fair text column)."""
    from fnsearch.features import _numeric_text_problem

    problem = _numeric_text_problem("c", pd.Series(values), ".")
    assert problem == expected if expected is None else expected in problem


def test_label_cells_are_read_raw_but_blank_is_missing(tmp_path):
    """Check that a class spelt 'None' or 'NA' is a label (pandas reads those as missing), while a
    blank label cell is missing; features keep pandas' missing markers."""
    df = frame(300)
    df["y"] = np.where(df["y"] == 1, "None", "NA")
    df["a"] = df["a"].astype(object)
    df.loc[0, "a"] = "NA"
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    ds = prepare_dataset(spec_for(path, positive="None"))
    assert ds.positive_label == "None" and int(ds.y.sum()) == int((df["y"] == "None").sum())
    assert np.isnan(ds.features["a"].iloc[0])
    df.loc[7, "y"] = " "
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"empty in 1 of 300 row\(s\) \(data row 8\)"):
        prepare_dataset(spec_for(path, positive="None"))


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"numeric": [{"name": "a"}], "categorical": []},
        {
            "numeric": [{"name": "a", "median": 0, "mean": 0, "scale": float("nan")}],
            "categorical": [],
        },
        {"numeric": [], "categorical": [{"name": "b", "categories": [1, 2]}]},
        {"numeric": 3, "categorical": []},
    ],
)
def test_preprocessing_from_dict_refuses_anything_else(bad):
    """Check that a tampered preprocessing.json is a ValueError, not a crash at transform time."""
    with pytest.raises(ValueError):
        Preprocessor.from_dict(bad)

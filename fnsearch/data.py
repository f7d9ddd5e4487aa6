"""Data: labels mapped through the declared positive value, costs, preprocessing, splits.

The file is read by :mod:`fnsearch.table` and its feature columns are checked by
:mod:`fnsearch.features`; :func:`prepare_dataset` puts it together. Everything is validated once
and raises :class:`~fnsearch.errors.DataError` (or ``CostError``) with a message naming the problem
and the fix. The output, :class:`Dataset`, is trusted downstream.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .costs import CostMatrix
from .errors import CostError, DataError
from .features import check_features, feature_columns
from .spec import MAX_COST
from .table import (
    _as_text,
    _column_hint,
    _is_numeric,
    _missing,
    _rows_text,
    read_table,
)

__all__ = ["MIN_PER_CLASS", "Dataset", "Preprocessor", "prepare_dataset", "read_table"]

log = logging.getLogger("fnsearch")

MIN_PER_CLASS = 5  # fewest positives (and negatives) any split or fold may get
MAX_RATIO = 1e12  # the largest (C_FN - C_TP) / (C_FP - C_TN) over all rows, and 1/it the smallest
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
COST_KEYS = ("fn", "fp", "tp", "tn")


# --- labels ----------------------------------------------------------------------------------


def map_labels(column: pd.Series, positive: Any) -> tuple[np.ndarray, str, str]:
    """Map raw labels to {0, 1} through the declared positive value (rule in DESIGN.md).

    Returns the 0/1 array, the raw label text that matched ``positive`` and the other label. A
    missing label (an empty or blank cell) is refused, never dropped: unlabelled rows are rarely
    missing at random, and a run on fewer rows than the file holds should not happen unasked.
    """
    text = pd.Series(
        [None if v is None or not v.strip() else v.strip() for v in _as_text(column)],
        name=column.name,
        dtype=object,
    )
    missing = text.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"label column {column.name!r} is empty in {int(missing.sum())} of {missing.size} "
            f"row(s) ({_rows_text(missing)}); fnsearch does not guess labels - fill those cells "
            "or remove those rows"
        )
    values = sorted(text.unique().tolist())
    if len(values) == 0:
        raise DataError("the data has no rows; give a file with data rows under the header")
    by_value = _parse_all(values, positive)
    if by_value is not None:
        matched = [v for v, parsed in zip(values, by_value, strict=True) if parsed == positive]
    else:
        want = _toml_text(positive)
        matched = [v for v in values if v == want]
    shown = ", ".join(repr(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
    if len(values) > 2:
        counts = text.value_counts(sort=False)
        rarest = min(values, key=lambda v: (int(counts[v]), v))
        where = (text == rarest).to_numpy()
        raise DataError(
            f"label column {column.name!r} has {len(values)} values ({shown}); fnsearch needs "
            f"exactly two - the rarest, {rarest!r}, is in {int(where.sum())} row(s) "
            f"({_rows_text(where)}): fix or remove those rows, or choose another label column"
        )
    if not matched:
        raise DataError(
            f"positive label {positive!r} does not occur in column {column.name!r}; its values are "
            f"{shown}{_positive_hint(values, positive)}"
        )
    if len(values) == 1:
        raise DataError(
            f"every row of label column {column.name!r} is {values[0]!r}: there are no "
            "negatives; fnsearch needs both classes"
        )
    if len(matched) > 1:
        raise DataError(
            f"positive label {positive!r} matches {len(matched)} values of {column.name!r} "
            f"({', '.join(map(repr, matched))}); make the labels distinct"
        )
    y = (text == matched[0]).to_numpy().astype(np.int8)
    return y, matched[0], next(v for v in values if v != matched[0])


def _positive_hint(values: list[str], positive: Any) -> str:
    """How to write ``positive`` so that it matches, when a near miss is plain."""
    if isinstance(positive, str) and _parse_all(values, _guess_number(positive)) is not None:
        return f" (to compare by value write positive = {positive} without quotes)"
    if isinstance(positive, bool) and _parse_all(values, 1) is not None:
        return f" (for 0/1 labels write positive = {int(positive)})"
    near = [v for v in values if v.lower() == _toml_text(positive).lower()]
    if near:
        return f" (labels are compared exactly: write positive = {near[0]!r})"
    return ""


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _guess_number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _parse_all(values: list[str], positive: Any) -> list[Any] | None:
    """Every value parsed as ``positive``'s type (number or bool), or None when some do not parse."""
    if isinstance(positive, bool):
        table = {"true": True, "false": False}
        parsed = [table.get(v.lower()) for v in values]
        return None if any(p is None for p in parsed) else parsed
    if isinstance(positive, int | float):
        try:
            return [float(v) for v in values]
        except ValueError:
            return None
    return None


# --- costs -----------------------------------------------------------------------------------


def read_costs(frame: pd.DataFrame, cost: dict[str, Any], label: str | None = None) -> CostMatrix:
    """Per-example cost arrays from numbers or cost columns, checked row by row."""
    n = len(frame)
    arrays = {}
    for key in COST_KEYS:
        value = cost[key]
        if not isinstance(value, str):
            arrays[key] = np.full(n, float(value))
            continue
        if value == label:
            raise CostError(
                f"[cost] {key} names the label column {value!r}; name a column of costs, or give "
                "a number"
            )
        if value not in frame.columns:
            number = _guess_number(value.strip())
            hint = (
                f" (for a number write {key} = {value.strip()} without quotes)"
                if not isinstance(number, str)
                else ""
            )
            raise CostError(
                f"[cost] {key} names column {value!r}, which is not in the data{hint}"
                f"{_column_hint(value, frame)}"
            )
        arrays[key] = _cost_column(frame[value])
    costs = CostMatrix(**arrays, per_example=any(isinstance(cost[k], str) for k in COST_KEYS))
    _check_cost_rows(costs)
    return costs


def _cost_column(col: pd.Series) -> np.ndarray:
    """One cost column as finite numbers >= 0, or a CostError saying which cells are not."""
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    empty = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    text = np.isnan(values) & ~empty
    where = f"cost column {col.name!r}"
    if text.any():
        sample = str(col[text].iloc[0])
        hint = (
            "; set [data] decimal = ','"
            if _COMMA_DECIMAL.fullmatch(sample.strip())
            else "; give every row a number"
        )
        raise CostError(
            f"{where} holds text such as {sample!r} in {int(text.sum())} row(s) "
            f"({_rows_text(text)}){hint}"
        )
    for bad, what, fix in (
        (empty, "is empty", "give every row a cost (0 if it costs nothing)"),
        (np.isinf(values), "is infinite", "give every row a finite cost"),
        (values < 0, "is negative", "costs must be >= 0 (write a gain as a smaller cost)"),
        (values > MAX_COST, f"exceeds {MAX_COST:g}", "express the costs in larger units"),
    ):
        if bad.any():
            raise CostError(f"{where} {what} in {int(bad.sum())} row(s) ({_rows_text(bad)}); {fix}")
    return values


def _check_cost_rows(c: CostMatrix) -> None:
    for worse, better, what in (
        ("tp", "fn", "a positive is no cheaper caught than missed"),
        ("tn", "fp", "a negative is no cheaper passed than flagged"),
    ):
        # Equal costs are refused too: such a row has no cheaper decision, so it cannot be weighted.
        bad = getattr(c, worse) >= getattr(c, better)
        if bad.any():
            raise CostError(
                f"C_{worse.upper()} >= C_{better.upper()} in {int(bad.sum())} row(s) "
                f"({_rows_text(bad)}): {what}; check the cost columns"
            )
    # The auto weight range reaches 10 w*; far beyond 1e12 Adam's squared gradients overflow
    # float32, so every trial would diverge. A ratio that extreme is a unit mistake, not a study.
    ratio = float((c.fn - c.tp).sum() / (c.fp - c.tn).sum())
    if not MAX_RATIO**-1 <= ratio <= MAX_RATIO:
        raise CostError(
            f"the costs make a missed positive {ratio:.3g} times as costly as a false alarm "
            f"(w*); fnsearch needs a ratio between {MAX_RATIO**-1:g} and {MAX_RATIO:g} - check "
            "the units of [cost]"
        )


# --- features --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessor:
    """Fitted preprocessing as plain data: numbers imputed and standardised, categories one-hot.

    Fitted on training rows only. Unseen categories map to all zeros; missing numbers take the
    training median. Stored as JSON (``preprocessing.json``), never pickled.
    """

    numeric: tuple[dict[str, Any], ...]
    categorical: tuple[dict[str, Any], ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Preprocessor:
        numeric, categorical = [], []
        for name in frame.columns:
            col = frame[name]
            if _is_numeric(col):
                values = col.to_numpy(dtype=float, na_value=np.nan)
                finite = values[np.isfinite(values)]
                median = float(np.median(finite)) if finite.size else 0.0
                filled = np.where(np.isfinite(values), values, median)
                # Scaled by the largest magnitude first: the square of 1e200 overflows float64.
                top = float(np.abs(filled).max()) if filled.size else 0.0
                scale = float((filled / top).std() * top) if top > 0 else 0.0
                numeric.append(
                    {
                        "name": str(name),
                        "median": median,
                        "mean": float(filled.mean()),
                        "scale": scale if scale > 0 else 1.0,
                    }
                )
            else:
                cats = sorted(set(_categories(col)))
                categorical.append({"name": str(name), "categories": cats})
        return cls(tuple(numeric), tuple(categorical))

    @property
    def columns(self) -> list[str]:
        """The input columns this preprocessor needs."""
        return [c["name"] for c in self.numeric] + [c["name"] for c in self.categorical]

    @property
    def feature_names(self) -> list[str]:
        """Names of the output features, in order."""
        names = [c["name"] for c in self.numeric]
        for c in self.categorical:
            names += [f"{c['name']}={v}" for v in c["categories"]]
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The design matrix (float32) for ``frame``'s rows."""
        n = len(frame)
        width = len(self.numeric) + sum(len(c["categories"]) for c in self.categorical)
        out = np.zeros((n, width), dtype=np.float32)
        for j, c in enumerate(self.numeric):
            values = _numbers(frame[c["name"]])
            values = np.where(np.isfinite(values), values, c["median"])
            out[:, j] = (values - c["mean"]) / c["scale"]
        start = len(self.numeric)
        for c in self.categorical:
            codes = pd.Index(c["categories"]).get_indexer(_categories(frame[c["name"]]))
            rows = np.flatnonzero(codes >= 0)
            out[rows, start + codes[rows]] = 1.0
            start += len(c["categories"])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        """The inverse of :meth:`to_dict`; ``ValueError`` naming the fault for anything else."""
        if not isinstance(d, dict) or set(d) != {"numeric", "categorical"}:
            raise ValueError("expected the keys 'numeric' and 'categorical'")
        numeric, categorical = d["numeric"], d["categorical"]
        if not (isinstance(numeric, list) and isinstance(categorical, list)):
            raise ValueError("'numeric' and 'categorical' must be lists")
        for c in numeric:
            if not (
                isinstance(c, dict)
                and isinstance(c.get("name"), str)
                and all(_finite_number(c.get(k)) for k in ("median", "mean", "scale"))
                and c["scale"] != 0
            ):
                raise ValueError(f"bad numeric entry {str(c)[:80]}")
        for c in categorical:
            if not (
                isinstance(c, dict)
                and isinstance(c.get("name"), str)
                and isinstance(c.get("categories"), list)
                and all(isinstance(v, str) for v in c["categories"])
            ):
                raise ValueError(f"bad categorical entry {str(c)[:80]}")
        return cls(tuple(numeric), tuple(categorical))


def _finite_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(col: pd.Series) -> np.ndarray:
    """A numeric feature's values; text that is not a number is an error, never a silent NaN."""
    if _is_numeric(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(values).any():
            raise DataError(
                f"numeric feature column {col.name!r} holds infinite values "
                f"({int(np.isinf(values).sum())} rows); replace them with numbers or leave them empty"
            )
        return values
    parsed = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(parsed) & ~col.isna().to_numpy()
    if bad.any():
        sample = col[bad].iloc[0]
        raise DataError(
            f"numeric feature column {col.name!r} holds text such as {sample!r} in "
            f"{int(bad.sum())} row(s); fix those cells or leave them empty"
        )
    return parsed


def _categories(col: pd.Series) -> list[str]:
    # Missing is a category of its own: in real tables "not given" often carries information.
    return ["<missing>" if _missing(v) else str(v).strip() for v in col.tolist()]


# --- splits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """The validated data of a study: features, 0/1 labels, per-example costs, split indices."""

    features: pd.DataFrame
    y: np.ndarray
    costs: CostMatrix
    positive_label: str
    negative_label: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]  # (train rows, validation rows) of the pool

    @property
    def pool(self) -> np.ndarray:
        """Train + validation rows: what cross-validation folds."""
        return np.concatenate([self.train, self.val])

    def counts(self, what: str) -> dict[str, int]:
        """``{"train": n, "val": n, "test": n}`` of rows (``what="rows"``) or positives."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        if what == "rows":
            return {k: int(v.size) for k, v in parts.items()}
        return {k: int(self.y[v].sum()) for k, v in parts.items()}


def resolve_folds(folds: int | str, pool_rows: int) -> int:
    """The number of CV folds: ``auto`` is 5 below 10,000 pool rows, else 1 (one validation split)."""
    if folds == "auto":
        return 5 if pool_rows < 10_000 else 1
    return int(folds)


def prepare_dataset(spec: Any) -> Dataset:
    """Read and validate the spec's data and split it (stratified, seeded)."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    data, seed = spec.data, spec.study["seed"]
    frame = read_table(data, label=data["label"])
    if data["label"] not in frame.columns:
        raise DataError(
            f"label column {data['label']!r} is not in the data{_column_hint(data['label'], frame)}"
        )
    if len(frame) == 0:
        raise DataError("the data has a header but no rows; give a file with data rows")
    y, positive_label, negative_label = map_labels(frame[data["label"]], data["positive"])
    costs = read_costs(frame, spec.cost, data["label"])
    columns = feature_columns(frame, data, spec.cost)
    check_features(frame, columns, data["decimal"])
    features = frame[columns].reset_index(drop=True)

    _check_class_counts(y)
    rows = np.arange(len(y))
    rest, test = train_test_split(rows, test_size=data["test"], stratify=y, random_state=seed)
    train, val = train_test_split(
        rest, test_size=data["val"] / (1 - data["test"]), stratify=y[rest], random_state=seed
    )
    _check_splits(y, {"train": train, "val": val, "test": test})
    n_folds = resolve_folds(spec.search["folds"], train.size + val.size)
    pool = np.concatenate([train, val])
    if n_folds > 1:
        _check_fold_counts(y[pool], n_folds)
        cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        folds = tuple((pool[a], pool[b]) for a, b in cv.split(pool, y[pool]))
    else:
        folds = ((train, val),)
    return Dataset(
        features,
        y,
        costs,
        positive_label,
        negative_label,
        np.sort(train),
        np.sort(val),
        np.sort(test),
        tuple((np.sort(a), np.sort(b)) for a, b in folds),
    )


def _check_class_counts(y: np.ndarray) -> None:
    # Three splits of at least MIN_PER_CLASS each cannot come from fewer rows than this; anything
    # above it is left to the exact per-split check, so a feasible split is never refused.
    for cls, name in ((1, "positive"), (0, "negative")):
        n = int((y == cls).sum())
        if n < 3 * MIN_PER_CLASS:
            raise DataError(
                f"too few {name} rows: {n} in all, but train, val and test need at least "
                f"{MIN_PER_CLASS} each; add data"
            )


def _check_splits(y: np.ndarray, parts: dict[str, np.ndarray]) -> None:
    # The exact counts of the actual split: a split that can be made is never refused.
    for cls, what in ((1, "positives"), (0, "negatives")):
        counts = {name: int((y[rows] == cls).sum()) for name, rows in parts.items()}
        short = [name for name, n in counts.items() if n < MIN_PER_CLASS]
        if short:
            raise DataError(
                f"the {' and '.join(short)} split{'s' if len(short) > 1 else ''} would get fewer "
                f"than {MIN_PER_CLASS} {what}: of {int((y == cls).sum())}, train / val / test get "
                f"{' / '.join(str(n) for n in counts.values())}; add data or change [data] val/test"
            )


def _check_fold_counts(y_pool: np.ndarray, n_folds: int) -> None:
    # Stratified folds hold floor(n / k) or ceil(n / k) of each class: floor is the exact minimum.
    for cls, what in ((1, "positives"), (0, "negatives")):
        n = int((y_pool == cls).sum())
        if n // n_folds < MIN_PER_CLASS:
            most = n // MIN_PER_CLASS
            fix = f"{most} or lower" if most >= 2 else "1"
            raise DataError(
                f"{n_folds}-fold cross-validation would give some folds only {n // n_folds} {what} "
                f"(of {n} in train+val); each needs at least {MIN_PER_CLASS} - set [search] folds "
                f"= {fix} (1 = one validation split)"
            )

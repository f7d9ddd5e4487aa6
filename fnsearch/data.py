"""Data: read the table, map labels through the declared positive value, costs, splits, preprocessing.

Everything here is validated once and raises :class:`~fnsearch.errors.DataError` (or ``CostError``)
with a message naming the problem and the fix. The output, :class:`Dataset`, is trusted downstream.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .costs import CostMatrix
from .datasets import load_builtin
from .errors import CostError, DataError

__all__ = ["MIN_PER_CLASS", "Dataset", "Preprocessor", "prepare_dataset", "read_table"]

log = logging.getLogger("fnsearch")

MIN_PER_CLASS = 5  # fewest positives (and negatives) any split or fold may get
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
COST_KEYS = ("fn", "fp", "tp", "tn")


# --- reading ---------------------------------------------------------------------------------


def read_table(data: dict[str, Any], *, label: str | None = None) -> pd.DataFrame:
    """Read the table named by a ``[data]`` section (CSV, Parquet or ``builtin:NAME``).

    ``label``, when given, is read as raw text so that labels are never coerced by the reader.
    """
    path = data["path"]
    if path.startswith("builtin:"):
        return load_builtin(path.removeprefix("builtin:"))
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise DataError(f"data file {path!r} {what}; check [data] path")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(p)
        except Exception as e:  # pyarrow raises many types for a bad file
            raise DataError(f"cannot read {path!r} as Parquet ({e}); check the file") from None
        if label is not None and label in frame.columns:
            frame[label] = _as_text(frame[label])
        return frame
    return _read_csv(p, data, label)


def _read_csv(p: Path, data: dict[str, Any], label: str | None) -> pd.DataFrame:
    options = csv_options(data)
    try:
        with warnings.catch_warnings():  # a multi-character sep falls back to the python engine
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(p, dtype={label: str} if label else None, **options)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"data file {str(p)!r} is empty; give a CSV with a header row and data"
        ) from None
    except UnicodeDecodeError:
        raise DataError(
            f"data file {str(p)!r} is not {data['encoding']} text; set [data] encoding "
            "(e.g. 'latin-1')"
        ) from None
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(
            f"cannot parse {str(p)!r} as CSV: {str(e).strip()}; check [data] sep"
        ) from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for sep in (";", "\t", "|", ","):
            if sep != data["sep"] and sep in header:
                raise DataError(
                    f"data file {str(p)!r} read as one column {header[:60]!r}; it looks separated "
                    f"by {sep!r}: set [data] sep = {sep!r}"
                )
    return frame


def csv_options(data: dict[str, Any]) -> dict[str, Any]:
    """The pandas ``read_csv`` options a ``[data]`` section asks for (recorded for predict)."""
    return {
        "sep": data["sep"],
        "decimal": data["decimal"],
        "na_values": list(data["na_values"]) or None,
        "encoding": data["encoding"],
    }


def _as_text(column: pd.Series) -> pd.Series:
    return pd.Series(
        [None if _missing(v) else str(v) for v in column.tolist()],
        index=column.index,
        name=column.name,
        dtype=object,
    )


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


# --- labels ----------------------------------------------------------------------------------


def map_labels(column: pd.Series, positive: Any) -> tuple[np.ndarray, str, str]:
    """Map raw labels to {0, 1} through the declared positive value (rule in DESIGN.md).

    Returns the 0/1 array, the raw label text that matched ``positive`` and the other label.
    """
    text = _as_text(column)
    text = pd.Series(
        [None if v is None else v.strip() for v in text], name=column.name, dtype=object
    )
    n_missing = int(text.isna().sum())
    if n_missing:
        raise DataError(
            f"label column {column.name!r} is empty in {n_missing} row(s) (first at row "
            f"{int(np.flatnonzero(text.isna().to_numpy())[0]) + 2} of the file); remove or fill those "
            "rows - fnsearch does not guess labels"
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
        raise DataError(
            f"label column {column.name!r} has {len(values)} values ({shown}); fnsearch needs "
            "exactly two - filter the rows or choose another label column"
        )
    if not matched:
        hint = ""
        if isinstance(positive, str) and _parse_all(values, _guess_number(positive)) is not None:
            hint = f" (to compare by value write positive = {positive} without quotes)"
        raise DataError(
            f"positive label {positive!r} does not occur in column {column.name!r}; its values are "
            f"{shown}{hint}"
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


def read_costs(frame: pd.DataFrame, cost: dict[str, Any]) -> CostMatrix:
    """Per-example cost arrays from numbers or cost columns, checked row by row."""
    n = len(frame)
    arrays = {}
    for key in COST_KEYS:
        value = cost[key]
        if not isinstance(value, str):
            arrays[key] = np.full(n, float(value))
            continue
        if value not in frame.columns:
            raise CostError(
                f"[cost] {key} names column {value!r}, which is not in the data; columns are "
                f"{_column_list(frame)}"
            )
        column = pd.to_numeric(frame[value], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(column)
        if bad.any():
            kind = (
                "infinite"
                if (np.isinf(column) == bad).all()
                else "missing, infinite or non-numeric"
            )
            raise CostError(
                f"cost column {value!r} has {int(bad.sum())} {kind} value(s) (first at data row "
                f"{int(np.flatnonzero(bad)[0]) + 1}); give every row a finite number"
            )
        if (column < 0).any():
            raise CostError(
                f"cost column {value!r} has {int((column < 0).sum())} negative value(s); costs must "
                "be >= 0 (write a gain as a smaller cost)"
            )
        arrays[key] = column
    costs = CostMatrix(**arrays, per_example=any(isinstance(cost[k], str) for k in COST_KEYS))
    _check_cost_rows(costs)
    return costs


def _check_cost_rows(c: CostMatrix) -> None:
    for worse, better, what in (
        ("tp", "fn", "a positive is no cheaper caught than missed"),
        ("tn", "fp", "a negative is no cheaper passed than flagged"),
    ):
        # Equal costs are refused too: such a row has no cheaper decision, so it cannot be weighted.
        rows = np.flatnonzero(getattr(c, worse) >= getattr(c, better))
        if not rows.size:
            continue  # (constant costs were checked with the spec)
        shown = ", ".join(str(r + 1) for r in rows[:5]) + (" ..." if rows.size > 5 else "")
        raise CostError(
            f"C_{worse.upper()} >= C_{better.upper()} in {rows.size} row(s) (data rows {shown}): "
            f"{what}; check the cost columns"
        )


# --- features --------------------------------------------------------------------------------


def feature_columns(frame: pd.DataFrame, data: dict[str, Any], cost: dict[str, Any]) -> list[str]:
    """The columns used as features: all but the label, ``drop`` and the cost columns."""
    missing = [c for c in data["drop"] if c not in frame.columns]
    if missing:
        raise DataError(
            f"[data] drop names column(s) {', '.join(map(repr, missing))} not in the data; columns "
            f"are {_column_list(frame)}"
        )
    excluded = {data["label"], *data["drop"], *(v for v in cost.values() if isinstance(v, str))}
    features = [c for c in frame.columns if c not in excluded]
    if not features:
        raise DataError(
            "no feature columns are left after removing the label, drop and cost "
            "columns; keep at least one"
        )
    return features


def _column_list(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    return ", ".join(repr(c) for c in cols[:12]) + (" ..." if len(cols) > 12 else "")


def _check_features(frame: pd.DataFrame, columns: list[str]) -> None:
    for name in columns:
        col = frame[name]
        if _is_numeric(col):
            values = col.to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                raise DataError(
                    f"feature column {name!r} holds infinite values ({int(np.isinf(values).sum())} "
                    "rows); replace them or list the column in [data] drop"
                )
            continue
        text = col.dropna().astype(str).str.strip()
        text = text[text != ""]
        if text.empty:
            continue
        numeric = text.str.fullmatch(_NUMBER.pattern)
        share = float(numeric.mean())
        if share >= 0.9:
            if share == 1.0 and text.str.fullmatch(_COMMA_DECIMAL.pattern).mean() >= 0.5:
                raise DataError(
                    f"feature column {name!r} holds numbers with decimal commas (e.g. "
                    f"{text.iloc[0]!r}); set [data] decimal = ','"
                )
            sample = text[~numeric].iloc[0] if share < 1.0 else text.iloc[0]
            raise DataError(
                f"feature column {name!r} looks numeric but is read as text (e.g. {sample!r}); "
                f"add {sample!r} to [data] na_values if it means missing, or fix the column"
            )


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


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
        return cls(tuple(d["numeric"]), tuple(d["categorical"]))


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
            f"label column {data['label']!r} is not in the data; columns are {_column_list(frame)}"
        )
    if len(frame) == 0:
        raise DataError("the data has a header but no rows; give a file with data rows")
    y, positive_label, negative_label = map_labels(frame[data["label"]], data["positive"])
    costs = read_costs(frame, spec.cost)
    columns = feature_columns(frame, data, spec.cost)
    _check_features(frame, columns)
    features = frame[columns].reset_index(drop=True)

    _check_class_counts(y)
    rows = np.arange(len(y))
    rest, test = train_test_split(rows, test_size=data["test"], stratify=y, random_state=seed)
    train, val = train_test_split(
        rest, test_size=data["val"] / (1 - data["test"]), stratify=y[rest], random_state=seed
    )
    for name, part in (("train", train), ("val", val), ("test", test)):
        _check_split(name, y[part], y)
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


def _check_split(name: str, part: np.ndarray, y: np.ndarray) -> None:
    for cls, what in ((1, "positives"), (0, "negatives")):
        n = int((part == cls).sum())
        if n < MIN_PER_CLASS:
            raise DataError(
                f"the {name} split gets only {n} {what} (of {int((y == cls).sum())}); need at least "
                f"{MIN_PER_CLASS} per split - add data or change [data] val/test"
            )


def _check_fold_counts(y_pool: np.ndarray, n_folds: int) -> None:
    for cls, what in ((1, "positives"), (0, "negatives")):
        n = int((y_pool == cls).sum())
        if n // n_folds < MIN_PER_CLASS:
            raise DataError(
                f"{n_folds}-fold cross-validation would give folds of {n // n_folds} {what} (of {n} "
                f"in train+val); need at least {MIN_PER_CLASS} - set [search] folds lower (1 = one "
                "validation split)"
            )

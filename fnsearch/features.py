"""Feature columns: which columns are features, and whether each reads as the user meant.

A column of numbers that pandas read as text (units, thousands separators, decimal commas, a missing
marker), ``inf``, a text column with a value per row, or an unnamed column with data is refused with
the column, a sample and the fix - never encoded silently into something else.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .table import _column_hint, _is_numeric, _rows_text

__all__ = ["MAX_CATEGORIES", "check_features", "feature_columns"]

log = logging.getLogger("fnsearch")

MAX_CATEGORIES = 1000  # one-hot columns one text feature may add


def feature_columns(frame: pd.DataFrame, data: dict[str, Any], cost: dict[str, Any]) -> list[str]:
    """The columns used as features: all but the label, ``drop`` and the cost columns."""
    missing = [c for c in data["drop"] if c not in frame.columns]
    if missing:
        raise DataError(
            f"[data] drop names column(s) {', '.join(map(repr, missing))} not in the data"
            f"{_column_hint(missing[0], frame)}"
        )
    excluded = {data["label"], *data["drop"], *(v for v in cost.values() if isinstance(v, str))}
    # pandas names an empty header cell "Unnamed: N". With no data either it is the trailing
    # delimiter many spreadsheet exports write, and carries nothing: leave it out.
    unnamed = [c for c in frame.columns if re.fullmatch(r"Unnamed: \d+", str(c))]
    excluded |= {c for c in unnamed if frame[c].isna().all()}
    features = [c for c in frame.columns if c not in excluded]
    for i, c in enumerate(frame.columns):
        # With data it is most often a saved row index, which as a feature learns the row order.
        if c in features and c in unnamed:
            raise DataError(
                f"column {i + 1} of the data has no name in the header (read as {c!r}; often a "
                f"saved row index); name it, or add {c!r} to [data] drop"
            )
    if not features:
        raise DataError(
            "no feature columns are left after removing the label, drop and cost "
            "columns; keep at least one"
        )
    return features


def check_features(frame: pd.DataFrame, columns: list[str], decimal: str = ".") -> None:
    """Refuse a feature column that does not read as the user meant (``decimal``: the one set)."""
    for name in columns:
        col = frame[name]
        if _is_numeric(col):
            values = col.to_numpy(dtype=float, na_value=np.nan)
            inf = np.isinf(values)
            if inf.any():
                raise DataError(
                    f"feature column {name!r} holds infinite values in {int(inf.sum())} row(s) "
                    f"({_rows_text(inf)}); replace them or list the column in [data] drop"
                )
            if values.size > 20 and np.array_equal(values, values[0] + np.arange(values.size)):
                # Not refused (row order can be time), but as a feature it learns the file's row
                # order, which a file sorted by outcome turns into a leak.
                log.warning(
                    "feature column %r counts the rows (%g, %g, %g, ...); if it is a row id, list "
                    "it in [data] drop",
                    name,
                    *values[:3],
                )
            continue
        text = col.dropna().astype(str).str.strip()
        text = text[text != ""]
        if text.empty:
            continue
        problem = _numeric_text_problem(str(name), text, decimal) or _one_hot_problem(
            str(name), text
        )
        if problem:
            raise DataError(problem)


# A number as text: digits with at most one decimal mark, or grouped in thousands ('1,234,567',
# '1.234,5'); optionally with a currency sign before, or a percent sign, a currency sign or a short
# unit after (a spaced unit, or two or more lower-case letters: '57 kg', '57kg', not '12B').
_CORE = r"(?:\d+(?:[.,]\d*)?|[.,]\d+|\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?)(?:[eE][+-]?\d+)?"
_NUMBERISH = re.compile(
    rf"^(?P<pre>[$€£¥₹]?)\s*[+-]?\s*(?P<pre2>[$€£¥₹]?)\s*(?P<core>{_CORE})\s*"
    r"(?P<unit>%|\s?[$€£¥₹]|\s[^\W\d_]{1,6}\.?|[^\W\d_A-Z]{2,6}\.?)?$"
)
_THOUSANDS = re.compile(r"^[1-9]\d{0,2}([,.])\d{3}$")  # '57,000': thousands, or 57 with 3 decimals


def _numeric_text_problem(name: str, text: pd.Series, decimal: str) -> str | None:
    """Why a text column that is (almost) all numbers was not read as numbers, and the fix."""
    counts = text.value_counts()
    parts = {v: _NUMBERISH.match(v) for v in text.drop_duplicates()}  # in file order
    if sum(int(counts[v]) for v, m in parts.items() if m) < 0.9 * len(text):
        return None  # text, with some numbers among it
    where = f"feature column {name!r}"
    decorated = [v for v, m in parts.items() if m and (m["pre"] or m["pre2"] or m["unit"])]
    if decorated:
        if len(parts) <= 10:
            return None  # a handful of levels ('36 months', '60 months') is a fair category
        return (
            f"{where} holds numbers written with a unit or symbol (e.g. {decorated[0]!r}), read "
            "as text; remove the unit or symbol from the cells, or list the column in [data] drop"
        )
    sample = next((v for v, m in parts.items() if m is None), None)
    if sample is not None:
        return (
            f"{where} looks numeric but is read as text (e.g. {sample!r}); add {sample!r} to "
            "[data] na_values if it means missing, or fix the column"
        )
    return _separator_problem(where, [m["core"] for m in parts.values()], decimal)


def _separator_problem(where: str, cores: list[str], decimal: str) -> str:
    """The fix for numbers that did not parse because of their decimal or thousands marks."""
    marked = [c for c in cores if re.search(r"[,.' ]", c)]
    if not marked:
        return f"{where} looks numeric but is read as text (e.g. {cores[0]!r}); fix the column"
    mixed = next((c for c in marked if len(set(re.sub(r"[^,.' ]", "", c))) > 1), None)
    repeated = next((c for c in marked if max(c.count(s) for s in ",.' ") > 1), None)
    if mixed is not None:  # '1,234.5': the last mark is the decimal one, the other groups
        dec = re.sub(r"[^,.' ]", "", mixed)[-1]
        group = next(s for s in re.sub(r"[^,.' ]", "", mixed) if s != dec)
        extra = f" and decimal = {dec!r}" if dec != decimal else ""
        return (
            f"{where} holds numbers with thousands separators (e.g. {mixed!r}), read as text; "
            f"set [data] thousands = {group!r}{extra}"
        )
    if repeated is not None:  # '1,234,567'
        group = next(s for s in ",.' " if repeated.count(s) > 1)
        return (
            f"{where} holds numbers with thousands separators (e.g. {repeated!r}), read as text; "
            f"set [data] thousands = {group!r}"
        )
    mark = re.sub(r"[^,.' ]", "", marked[0])
    if all(_THOUSANDS.match(c) for c in marked):  # every one could be either: say both
        return (
            f"{where} holds numbers such as {marked[0]!r}, read as text: if {mark!r} separates "
            f"thousands set [data] thousands = {mark!r}; if it is the decimal mark set [data] "
            f"decimal = {mark!r}"
        )
    return (
        f"{where} holds numbers with decimal {'commas' if mark == ',' else 'marks'} (e.g. "
        f"{marked[0]!r}), read as text; set [data] decimal = {mark!r}"
    )


def _one_hot_problem(name: str, text: pd.Series) -> str | None:
    """A text column with (nearly) a value per row cannot generalise as one-hot features."""
    distinct = int(text.nunique())
    if distinct > MAX_CATEGORIES or (distinct > 50 and distinct > 0.5 * len(text)):
        return (
            f"feature column {name!r} has {distinct} distinct non-numeric values in {len(text)} rows "
            f"(e.g. {text.iloc[0]!r}: an id, a date or free text?); one-hot encoding it gives a "
            "feature per value that cannot generalise - list it in [data] drop"
        )
    return None

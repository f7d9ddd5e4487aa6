"""The raw table: reading CSV, Parquet or a bundled dataset, and naming why a file cannot be read.

Every mistake raises :class:`~fnsearch.errors.DataError` naming the file and the fix. Small helpers
that other data modules use to name columns and rows in their messages live here too.
"""

from __future__ import annotations

import codecs
import difflib
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .datasets import load_builtin
from .errors import DataError

__all__ = ["csv_options", "read_table"]

# pandas' own default missing-value markers ("NA", "None", "null", ...), and the list as its read_csv
# documents them should that private name ever move.
try:
    from pandas._libs.parsers import STR_NA_VALUES as _PANDAS_NA
except ImportError:  # pragma: no cover
    # fmt: off
    _PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                  "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
    # fmt: on
_DEFAULT_NA = sorted(_PANDAS_NA)


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
    _check_not_binary(p, data)
    options = csv_options(data)
    try:
        with warnings.catch_warnings():  # a multi-character sep falls back to the python engine
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            if label is not None:
                options = _label_as_raw_text(p, options, label)
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
        "thousands": data.get("thousands"),  # absent from summaries written before it existed
        "na_values": list(data["na_values"]) or None,
        "encoding": data["encoding"],
    }


def _label_as_raw_text(p: Path, options: dict[str, Any], label: str) -> dict[str, Any]:
    """Options under which only an empty label cell (or one in ``na_values``) is missing.

    pandas reads "NA", "None", "null", ... as missing by default. For features that is what a user
    means; for the label it would turn a real class called "None" into a missing label.
    """
    header = pd.read_csv(p, nrows=0, **options).columns
    if label not in header:
        return options  # the caller names the missing label column
    user = list(options["na_values"] or [])
    na = {c: [*_DEFAULT_NA, *user] for c in header if c != label}
    na[label] = ["", *user]
    return {**options, "na_values": na, "keep_default_na": False}


# File signatures a CSV reader would misread as text, with what the file is and what to do.
_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)", "save it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook", "save it as CSV"),
    (b"PAR1", "a Parquet file", "give it a .parquet name"),
    (b"\x1f\x8b", "gzip-compressed", "give it a .gz name (e.g. data.csv.gz)"),
)
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


def _check_not_binary(p: Path, data: dict[str, Any]) -> None:
    """Name a spreadsheet, Parquet or UTF-16 file before pandas misreads it as garbled text."""
    if p.suffix.lower() in _COMPRESSED:  # pandas decompresses these by their name
        return
    with p.open("rb") as f:
        head = f.read(4)
    for magic, what, fix in _SIGNATURES:
        if head.startswith(magic):
            raise DataError(f"data file {str(p)!r} is {what}, not CSV text; {fix}")
    utf16 = codecs.lookup(data["encoding"]).name.startswith("utf-16")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") and not utf16:
        raise DataError(
            f"data file {str(p)!r} is UTF-16 text (Excel's 'Unicode text'); set [data] "
            "encoding = 'utf-16' (such files are usually tab-separated: sep = '\\t')"
        )


def _as_text(column: pd.Series) -> pd.Series:
    return pd.Series(
        [None if _missing(v) else str(v) for v in column.tolist()],
        index=column.index,
        name=column.name,
        dtype=object,
    )


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _rows_text(mask: np.ndarray) -> str:
    """The first few flagged rows, numbered as data rows (1 = the first row under the header)."""
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r + 1) for r in rows[:5]) + (" ..." if rows.size > 5 else "")
    return f"data row{'s' if rows.size > 1 else ''} {shown}"


def _column_list(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    return ", ".join(repr(c) for c in cols[:12]) + (" ..." if len(cols) > 12 else "")


def _column_hint(name: str, frame: pd.DataFrame) -> str:
    """'; did you mean X?' for a near miss (case, spaces, a typo), else the list of columns."""
    cols = [str(c) for c in frame.columns]
    near = [c for c in cols if c.strip().lower() == name.strip().lower()]
    near = near or difflib.get_close_matches(name, cols, n=1, cutoff=0.6)
    if near:
        return f"; did you mean {near[0]!r}? (columns are {_column_list(frame)})"
    return f"; columns are {_column_list(frame)}"


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)

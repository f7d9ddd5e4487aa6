"""Study specs: defaults in one place, loading from TOML or dicts, dotted overrides, validation.

A spec is validated once, at the boundary (:func:`load_spec`); everything downstream trusts it. Legal
values are data (:data:`_RULES`), checked by one routine that writes uniform messages; checks that
involve two keys are written by hand in :func:`_check_cross`.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError

__all__ = ["DEFAULTS", "Spec", "load_spec", "mask_url", "parse_override_value", "url_secrets"]


class _Required:
    """Marker of a key with no default: the spec must give it. Survives deepcopy as itself."""

    def __deepcopy__(self, memo: dict) -> _Required:
        return self

    def __repr__(self) -> str:
        return "<required>"


REQUIRED = _Required()

# Every key a spec may hold, with its default. Why each default (see also the README):
# - n_trials 64 with a population of up to 16: four sampler rounds, enough for TPE on one parameter.
# - folds "auto": 5-fold CV of train+val when it has under 10,000 rows (a few hundred validation rows
#   make single-split costs mostly noise), one validation split above that (costs are stable there and
#   CV would cost 5x).
# - an MLP with one hidden layer of 32: small enough to train in milliseconds, flexible enough to beat
#   logistic regression where the boundary bends; weight decay and early stopping keep it honest.
DEFAULTS: dict[str, dict[str, Any]] = {
    "study": {
        "name": None,  # None: the spec file's stem, or "fnsearch" for a dict spec
        "n_trials": 64,
        "seed": 0,
        "storage": None,  # None: a journal file in the run folder, or in memory without a run folder
        "max_failed": None,  # None: as many as n_trials, so a study where everything fails ends
        "final_refit": True,
        # Seconds between a worker's heartbeats on shared storage; a worker silent for three of
        # them is taken for dead and its trials are run again. 10 s keeps the writes negligible
        # (one per worker per beat) and a dead worker's trials return within half a minute.
        "heartbeat": 10,
    },
    "data": {
        "path": REQUIRED,
        "label": REQUIRED,
        "positive": REQUIRED,
        "drop": [],
        "val": 0.2,
        "test": 0.2,
        "sep": ",",
        "decimal": ".",
        "thousands": None,  # None: numbers have no thousands separators
        "na_values": [],
        "encoding": "utf-8",
    },
    "cost": {"fn": REQUIRED, "fp": REQUIRED, "tp": 0.0, "tn": 0.0},
    "search": {
        "low": "auto",
        "high": "auto",
        "sampler": "tpe",
        "folds": "auto",
        "repeats": 1,
        "population": "auto",
        "tune_threshold": True,
        "choose": "one_se",
    },
    "model": {
        "kind": "mlp",
        "hidden": [32],
        "activation": "relu",
        "epochs": 100,
        "batch_size": 64,
        "lr": 3e-3,
        "weight_decay": "auto",
        "patience": 10,
        "device": "auto",
        "threads": "auto",
    },
}


# --- the rules: one predicate and one description per key -------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int_at_least(lo: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_int(v) and v >= lo), f"an integer >= {lo}"


def _positive_number() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_num(v) and v > 0 and v == v and v != float("inf")), "a number > 0"


def _fraction() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_num(v) and 0 < v < 1), "a fraction strictly between 0 and 1"


def _choice(*options: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in options), "one of " + ", ".join(repr(o) for o in options)


def _text() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, str) and v != ""), "a non-empty string"


def _or_auto(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    check, text = rule
    return (lambda v: v == "auto" or check(v)), f'"auto" or {text}'


def _or_none(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    check, text = rule
    return (lambda v: v is None or check(v)), f"{text} (or left out)"


def _list_of(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    check, text = rule
    return (lambda v: isinstance(v, list) and all(check(x) for x in v)), f"a list, each item {text}"


def _known_encoding(v: Any) -> bool:
    import codecs

    try:
        return isinstance(v, str) and codecs.lookup(v) is not None
    except LookupError:
        return False


# A cost above this is surely a unit mistake; sums of such costs over many rows overflow.
MAX_COST = 1e15


def _cost() -> tuple[Callable[[Any], bool], str]:
    return (
        lambda v: (_is_num(v) and 0 <= v <= MAX_COST) or (isinstance(v, str) and v != "")
    ), f"a number from 0 to {MAX_COST:g} or the name of a cost column"


_RULES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "study": {
        "name": _or_none(_text()),
        "n_trials": _int_at_least(1),
        "seed": ((lambda v: _is_int(v) and 0 <= v < 2**32), "an integer from 0 to 4294967295"),
        "storage": _or_none(_text()),
        "max_failed": _or_none(_int_at_least(1)),
        "final_refit": ((lambda v: isinstance(v, bool)), "true or false"),
        "heartbeat": _int_at_least(1),
    },
    "data": {
        "path": _text(),
        "label": _text(),
        "positive": (
            (lambda v: isinstance(v, str | bool) or _is_num(v)),
            "a string, number or boolean (the raw label value of the positive class)",
        ),
        "drop": _list_of(_text()),
        "val": _fraction(),
        "test": _fraction(),
        "sep": _text(),
        "decimal": ((lambda v: isinstance(v, str) and len(v) == 1), "a single character"),
        "thousands": _or_none(
            (
                (lambda v: isinstance(v, str) and len(v) == 1 and not v.isdigit()),
                "a single character",
            )
        ),
        "na_values": (
            (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
            "a list of strings",
        ),
        "encoding": (_known_encoding, "a text encoding Python knows, e.g. 'utf-8' or 'latin-1'"),
    },
    "cost": {"fn": _cost(), "fp": _cost(), "tp": _cost(), "tn": _cost()},
    "search": {
        "low": _or_auto(_positive_number()),
        "high": _or_auto(_positive_number()),
        "sampler": _choice("tpe", "gp", "grid"),
        "folds": _or_auto(_int_at_least(1)),
        "repeats": _int_at_least(1),
        "population": _or_auto(_int_at_least(1)),
        "tune_threshold": ((lambda v: isinstance(v, bool)), "true or false"),
        "choose": _choice("one_se", "lowest"),
    },
    "model": {
        "kind": _choice("logistic", "mlp"),
        "hidden": _list_of(_int_at_least(1)),
        "activation": _choice("relu", "tanh", "gelu"),
        "epochs": _int_at_least(1),
        "batch_size": _int_at_least(1),
        "lr": _positive_number(),
        "weight_decay": _or_auto(
            ((lambda v: _is_num(v) and 0 <= v < float("inf")), "a number >= 0")
        ),
        "patience": _int_at_least(0),
        "device": (
            (
                lambda v: (
                    v in ("auto", "cpu", "cuda")
                    or (isinstance(v, str) and re.fullmatch(r"cuda:\d+", v) is not None)
                )
            ),
            "'auto', 'cpu', 'cuda' or 'cuda:N'",
        ),
        "threads": _or_auto(_int_at_least(1)),
    },
}


# --- the spec object ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A merged, validated study spec. Sections are plain dicts of the keys in :data:`DEFAULTS`."""

    study: dict[str, Any]
    data: dict[str, Any]
    cost: dict[str, Any]
    search: dict[str, Any]
    model: dict[str, Any]
    source: str | None = field(default=None, compare=False)  # where it came from, for messages

    def to_dict(self, *, mask_secrets: bool = True) -> dict[str, Any]:
        """The spec as nested plain data, storage passwords masked unless told otherwise."""
        out = {s: copy.deepcopy(getattr(self, s)) for s in DEFAULTS}
        if mask_secrets and out["study"]["storage"]:
            out["study"]["storage"] = mask_url(out["study"]["storage"])
        return out

    @property
    def per_example_costs(self) -> bool:
        """True when any cost is a column name."""
        return any(isinstance(v, str) for v in self.cost.values())

    def replace(self, **sections: Mapping[str, Any]) -> Spec:
        """A copy with some keys of some sections replaced (already-validated values only)."""
        merged = self.to_dict(mask_secrets=False)
        for section, values in sections.items():
            merged[section].update(values)
        return Spec(**merged, source=self.source)


def parse_override_value(text: str) -> Any:
    """Parse an override's value as a TOML value, falling back to the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def mask_url(url: str) -> str:
    """Hide the password of a storage URL (``postgresql://u:secret@h/db`` -> ``u:***@h``).

    Both places libpq takes one are masked: the userinfo and a ``password=`` query parameter.
    """
    url = re.sub(r"^([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@]*):[^@]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


def url_secrets(url: str | None) -> list[str]:
    """The password(s) a storage URL holds, raw and percent-decoded, for scrubbing text."""
    if not url:
        return []
    from urllib.parse import unquote

    found = re.findall(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@]*:([^@]*)@", url)
    found += re.findall(r"[?&]password=([^&]*)", url, flags=re.IGNORECASE)
    return sorted({v for s in found for v in (s, unquote(s)) if v}, key=len, reverse=True)


def load_spec(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Spec,
    overrides: Mapping[str, Any] | None = None,
    *,
    storage: str | None = None,
    n_trials: int | None = None,
) -> Spec:
    """Load, merge and validate a spec.

    Precedence, lowest first: :data:`DEFAULTS` < the spec (file, dict or Spec) < ``FNSEARCH_STORAGE``
    < ``overrides`` (dotted keys such as ``"model.hidden"``) < the ``storage`` and ``n_trials``
    arguments. Relative data paths in a spec file are taken relative to that file.
    """
    raw, source, default_name = _read(spec)
    merged = copy.deepcopy({s: dict(keys) for s, keys in DEFAULTS.items()})
    _merge(merged, raw, source)
    if os.environ.get("FNSEARCH_STORAGE"):
        merged["study"]["storage"] = os.environ["FNSEARCH_STORAGE"]
    for dotted, value in (overrides or {}).items():
        section, key = _split_dotted(dotted)
        _check_known(section, key)
        merged[section][key] = value
    if storage is not None:
        merged["study"]["storage"] = storage
    if n_trials is not None:
        merged["study"]["n_trials"] = n_trials
    if merged["study"]["name"] is None:
        merged["study"]["name"] = default_name
    for section, keys in merged.items():
        for key, value in keys.items():
            _check_value(section, key, value)
    _check_cross(merged)
    return Spec(**merged, source=source)


# --- helpers ----------------------------------------------------------------------------------


def _read(spec: Any) -> tuple[dict[str, Any], str | None, str]:
    if isinstance(spec, Spec):
        return spec.to_dict(mask_secrets=False), spec.source, spec.study["name"]
    if isinstance(spec, Mapping):
        return copy.deepcopy(dict(spec)), None, "fnsearch"
    if not isinstance(spec, str | os.PathLike):
        raise SpecError(
            f"spec must be a path to a TOML file, a dict or a Spec, got {type(spec).__name__}"
        )
    path = Path(spec)
    if not path.is_file():
        what = "is a folder, not a TOML file" if path.is_dir() else "does not exist"
        raise SpecError(f"spec file {str(path)!r} {what}; check the path")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"spec file {str(path)!r} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise SpecError(f"spec file {str(path)!r} is not UTF-8 text; save it as UTF-8") from None
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        data["path"] = _resolve_data_path(data["path"], path.parent)
    return raw, str(path), path.stem


def _resolve_data_path(value: str, base: Path) -> str:
    if value.startswith("builtin:") or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


def _merge(merged: dict[str, dict[str, Any]], raw: Mapping[str, Any], source: str | None) -> None:
    for section, keys in raw.items():
        if section not in DEFAULTS:
            raise SpecError(f"unknown section [{section}]{_suggest(section, DEFAULTS)}")
        if not isinstance(keys, Mapping):
            raise SpecError(f"[{section}] must be a table of keys, got {keys!r}")
        for key, value in keys.items():
            _check_known(section, key)
            merged[section][key] = value


def _split_dotted(dotted: str) -> tuple[str, str]:
    section, _, key = dotted.partition(".")
    if not key or "." in key:
        raise SpecError(f"override {dotted!r} must look like section.key, e.g. model.epochs")
    if section not in DEFAULTS:
        raise SpecError(
            f"unknown section [{section}] in override {dotted!r}{_suggest(section, DEFAULTS)}"
        )
    return section, key


def _check_known(section: str, key: str) -> None:
    if key not in DEFAULTS[section]:
        raise SpecError(f"unknown key [{section}] {key}{_suggest(key, DEFAULTS[section])}")


def _suggest(word: str, options: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; known: " + ", ".join(options)


def _check_value(section: str, key: str, value: Any) -> None:
    if value is REQUIRED:
        raise SpecError(f"[{section}] {key} is required; add it to the spec")
    check, text = _RULES[section][key]
    if not check(value):
        raise SpecError(f"[{section}] {key} must be {text}, got {_show(value)}")


def _show(value: Any) -> str:
    kind = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def _check_cross(m: dict[str, dict[str, Any]]) -> None:
    data, search, cost = m["data"], m["search"], m["cost"]
    if data["val"] + data["test"] >= 0.9:
        raise SpecError(
            f"[data] val + test = {data['val'] + data['test']:g} leaves under 10% of the rows to "
            "train on; lower val or test"
        )
    if data["decimal"] == data["sep"]:
        raise SpecError(
            f"[data] decimal and sep are both {data['sep']!r}; a CSV with decimal commas is "
            "separated by ';' - set sep = ';' (or decimal = '.')"
        )
    if data["thousands"] is not None and data["thousands"] == data["decimal"]:
        raise SpecError(
            f"[data] thousands and decimal are both {data['decimal']!r}; numbers such as "
            "'1.234,5' need thousands = '.' and decimal = ','"
        )
    low, high = search["low"], search["high"]
    if low != "auto" and high != "auto" and low >= high:
        raise SpecError(f"[search] low ({low:g}) must be below high ({high:g}); swap or widen them")
    if data["label"] in data["drop"]:
        raise SpecError(
            f"[data] drop lists the label column {data['label']!r}; remove it from drop"
        )
    constant = {k: v for k, v in cost.items() if not isinstance(v, str)}
    if "fn" in constant and "tp" in constant and constant["fn"] <= constant["tp"]:
        raise SpecError(
            f"[cost] fn ({constant['fn']:g}) must exceed tp ({constant['tp']:g}): otherwise a "
            "positive is no cheaper caught than missed and there is nothing to search"
        )
    if "fp" in constant and "tn" in constant and constant["fp"] <= constant["tn"]:
        raise SpecError(
            f"[cost] fp ({constant['fp']:g}) must exceed tn ({constant['tn']:g}): otherwise "
            "flagging everything is free; check the cost matrix"
        )
    if m["model"]["kind"] == "logistic" and m["model"]["hidden"] not in (
        [],
        DEFAULTS["model"]["hidden"],
    ):
        raise SpecError(
            "[model] hidden is set but kind = 'logistic' has no hidden layers; "
            "set kind = 'mlp' or drop hidden"
        )

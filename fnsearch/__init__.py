"""fnsearch: find the false-negative weight for a weighted BCE loss, scored by your own costs.

>>> from fnsearch import tune
>>> result = tune("studies/german_credit.toml", out="runs/gc")   # doctest: +SKIP
>>> result.best["pos_weight"], result.test["cost_per_example"]   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    CostError,
    DataError,
    DeviceError,
    FnsearchError,
    ModelFileError,
    SpecError,
    StorageError,
)

if TYPE_CHECKING:
    from .api import Progress, WorkSummary, rebuild, tune, work
    from .predict import Predictor, load_predictor
    from .result import TuneResult
    from .spec import DEFAULTS, Spec, load_spec

# The facade loads torch, Optuna and scikit-learn only when a name that needs them is used, so
# `fnsearch predict` and `fnsearch --help` start without paying for the search machinery.
_LAZY = {
    "Progress": "api",
    "WorkSummary": "api",
    "rebuild": "api",
    "tune": "api",
    "work": "api",
    "Predictor": "predict",
    "load_predictor": "predict",
    "TuneResult": "result",
    "DEFAULTS": "spec",
    "Spec": "spec",
    "load_spec": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fnsearch' has no attribute {name!r}")


__all__ = [
    "DEFAULTS",
    "CostError",
    "DataError",
    "DeviceError",
    "FnsearchError",
    "ModelFileError",
    "Predictor",
    "Progress",
    "Spec",
    "SpecError",
    "StorageError",
    "TuneResult",
    "WorkSummary",
    "__version__",
    "load_predictor",
    "load_spec",
    "rebuild",
    "tune",
    "work",
]

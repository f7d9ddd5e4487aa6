"""fnsearch: find the false-negative weight for a weighted BCE loss, scored by your own costs.

>>> from fnsearch import tune
>>> result = tune("studies/german_credit.toml", out="runs/gc")   # doctest: +SKIP
>>> result.best["pos_weight"], result.test["cost_per_example"]   # doctest: +SKIP
"""

from __future__ import annotations

from ._version import __version__
from .api import Progress, WorkSummary, rebuild, tune, work
from .errors import (
    CostError,
    DataError,
    DeviceError,
    FnsearchError,
    ModelFileError,
    SpecError,
    StorageError,
)
from .predict import Predictor, load_predictor
from .result import TuneResult
from .spec import DEFAULTS, Spec, load_spec

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

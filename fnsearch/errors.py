"""The exception family of fnsearch.

Every mistake a user can make (a bad spec, bad data, a device that is not there) raises a subclass of
:class:`FnsearchError`. The CLI prints ``str(error)`` as one line and exits with code 2; library users
catch the class they care about. Messages name the problem and the fix.
"""

from __future__ import annotations

__all__ = [
    "CostError",
    "DataError",
    "DeviceError",
    "FnsearchError",
    "ModelFileError",
    "SpecError",
    "StorageError",
]


class FnsearchError(Exception):
    """Base class of every user-facing error raised by fnsearch."""


class SpecError(FnsearchError, ValueError):
    """The study spec (TOML file, dict or override) is invalid."""


class DataError(FnsearchError, ValueError):
    """The data cannot be read or does not fit the spec (label, columns, splits)."""


class CostError(FnsearchError, ValueError):
    """The cost matrix is invalid (negative costs, unknown or incomplete cost columns)."""


class DeviceError(FnsearchError, RuntimeError):
    """The requested torch device is not available."""


class StorageError(FnsearchError, RuntimeError):
    """The Optuna storage cannot be used as asked (wrong study, locked, unreachable)."""


class ModelFileError(FnsearchError, ValueError):
    """A run folder is incomplete or its model file is unreadable."""

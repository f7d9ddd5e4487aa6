"""Writing and reading run folders: every file written whole (temp file + rename), or not at all."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .data import Preprocessor, _finite_number
from .errors import FnsearchError, ModelFileError
from .models import from_sequential_state

if TYPE_CHECKING:
    from .result import TuneResult

__all__ = ["SUMMARY", "load_run", "write_run"]

SUMMARY = "summary.json"
MODEL = "model.pt"
PREPROCESSING = "preprocessing.json"
TRIALS = "trials.csv"
REPORT = "report.html"
LOG = "run.log"


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_run(result: TuneResult, run_dir: Path) -> None:
    """Write the run folder's result files: summary, trials, model, preprocessing, report.

    Every file is rendered in memory first, so a failure while rendering writes nothing; each file
    is then replaced whole, ``summary.json`` last (its presence means the run is complete).
    """
    import io

    from .report import render_report

    texts = {
        TRIALS: result.trials_table.to_csv(index=False),
        REPORT: render_report(result),
        SUMMARY: _json_text(result.to_dict()),
    }
    model = None
    if result.model_state is not None and result.preprocessor is not None:
        texts[PREPROCESSING] = _json_text(result.preprocessor.to_dict())
        buffer = io.BytesIO()
        torch.save(result.model_state, buffer)
        model = buffer.getvalue()
    run_dir.mkdir(parents=True, exist_ok=True)
    if model is None:  # a rerun in which nothing completed must not leave an older model behind
        (run_dir / MODEL).unlink(missing_ok=True)
        (run_dir / PREPROCESSING).unlink(missing_ok=True)
    else:
        _atomic(run_dir / MODEL, lambda p: p.write_bytes(model))
    for name in (TRIALS, PREPROCESSING, REPORT, SUMMARY):
        if name in texts:
            _atomic(run_dir / name, lambda p, t=texts[name]: p.write_text(t, encoding="utf-8"))


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def load_run(
    run_dir: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], Preprocessor]:
    """The summary, model state and preprocessing of a run folder (no code from it is executed).

    Every file is checked for what predict needs, so a truncated or tampered folder is a
    :class:`ModelFileError` naming the file, never a crash or a silently wrong score.
    """
    d = Path(run_dir)
    rebuild = f"rebuild it with `fnsearch report {shlex.quote(str(d))}`"
    summary = _load_summary(d, rebuild)
    try:
        state = torch.load(d / MODEL, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{str(d / MODEL)!r} is missing; {rebuild}") from None
    except Exception as e:  # torch raises many types for a truncated or tampered file
        raise ModelFileError(
            f"{str(d / MODEL)!r} is not a valid fnsearch model ({type(e).__name__}); {rebuild}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{str(d / MODEL)!r} does not hold a state_dict of tensors; {rebuild}")
    try:
        from_sequential_state(state)
    except ValueError as e:
        raise ModelFileError(
            f"{str(d / MODEL)!r} is not a valid fnsearch model ({e}); {rebuild}"
        ) from None
    try:
        pre = Preprocessor.from_dict(json.loads((d / PREPROCESSING).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(
            f"{str(d / PREPROCESSING)!r} is missing or corrupt ({e}); {rebuild}"
        ) from None
    return summary, state, pre


def _load_summary(d: Path, rebuild: str) -> dict[str, Any]:
    """``summary.json`` with its spec re-validated (older summaries gain newer defaults)."""
    from .spec import load_spec

    if not (d / SUMMARY).is_file():
        raise ModelFileError(
            f"{str(d)!r} is not a run folder (no {SUMMARY}); run `fnsearch search` "
            "first or check the path"
        )
    try:
        summary = json.loads((d / SUMMARY).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{str(d / SUMMARY)!r} is corrupt ({e}); {rebuild}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("spec"), dict):
        raise ModelFileError(f"{str(d / SUMMARY)!r} is not an fnsearch summary; {rebuild}")
    if summary.get("best") is None:
        raise ModelFileError(
            f"run {str(d)!r} has no chosen model: no trial completed; see its report.html for why"
        )
    best = summary["best"]
    threshold = best.get("threshold") if isinstance(best, dict) else None
    if not _finite_number(threshold):
        raise ModelFileError(f"{str(d / SUMMARY)!r} has no finite best.threshold; {rebuild}")
    try:
        summary["spec"] = load_spec(summary["spec"]).to_dict()
    except FnsearchError as e:
        raise ModelFileError(
            f"{str(d / SUMMARY)!r} holds an invalid spec ({e}); {rebuild}"
        ) from None
    return summary

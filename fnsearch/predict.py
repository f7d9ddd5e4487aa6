"""Applying a run's chosen model to new rows: ``score = sigmoid(logit)``, ``decision = score >= t``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data import Preprocessor
from .errors import DataError, ModelFileError
from .models import Architecture, PopulationNet, from_sequential_state
from .runfolder import load_run
from .table import read_table

__all__ = ["Predictor", "load_predictor"]


class Predictor:
    """A run's chosen model and preprocessing, ready to score DataFrames."""

    def __init__(self, summary: dict, state: dict[str, torch.Tensor], pre: Preprocessor) -> None:
        self.summary = summary
        self.preprocessor = pre
        self.threshold = float(summary["best"]["threshold"])
        weights, _ = from_sequential_state(state)
        hidden = tuple(int(w.shape[1]) for w in weights[:-1])
        n_in = int(weights[0].shape[0])
        if n_in != len(pre.feature_names):
            raise ModelFileError(
                f"model.pt expects {n_in} features but preprocessing.json makes "
                f"{len(pre.feature_names)}; the run folder is inconsistent - rebuild it"
            )
        arch = Architecture(n_in, hidden, summary["spec"]["model"]["activation"])
        self.net = PopulationNet(arch, 1, seed=0)
        try:
            self.net.load_member_states([state])
        except (RuntimeError, KeyError) as e:
            raise ModelFileError(
                f"model.pt does not fit its architecture ({e}); rebuild it"
            ) from None
        self.net.eval()

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Sigmoid of the model's logit for each row (not a calibrated probability when w != 1)."""
        missing = [c for c in self.preprocessor.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"the data lacks feature column(s) {', '.join(map(repr, missing))} that "
                "the model was trained on; add them"
            )
        x = torch.as_tensor(self.preprocessor.transform(frame))
        with torch.no_grad():
            logits = self.net.logits(x)[0].double().numpy()
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-logits))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``score,decision`` for each row, in input order."""
        s = self.scores(frame)
        return pd.DataFrame({"score": s, "decision": (s >= self.threshold).astype(int)})


def load_predictor(run_dir: str | os.PathLike[str]) -> Predictor:
    """The predictor of a run folder (``torch.load(weights_only=True)``: no code from it runs)."""
    summary, state, pre = load_run(run_dir)
    return Predictor(summary, state, pre)


def predict_file(run_dir: str | os.PathLike[str], data: str | os.PathLike[str]) -> pd.DataFrame:
    """Read DATA with the run's recorded CSV options and predict every row."""
    predictor = load_predictor(run_dir)
    if not str(data).startswith("builtin:") and not Path(data).is_file():
        what = "is a folder, not a file" if Path(data).is_dir() else "does not exist"
        raise DataError(f"data file {str(data)!r} {what}; check the DATA argument")
    spec_data = dict(predictor.summary["spec"]["data"])
    spec_data["path"] = str(Path(data))
    frame = read_table(spec_data)
    return predictor.predict(frame)

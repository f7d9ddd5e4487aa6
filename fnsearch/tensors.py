"""Turning rows of a :class:`~fnsearch.data.Dataset` into resident device tensors, once per study."""

from __future__ import annotations

import numpy as np
import torch

from .costs import CostMatrix
from .data import Dataset, Preprocessor
from .train import Split

__all__ = ["make_split", "outcome_costs"]


def outcome_costs(y: np.ndarray, costs: CostMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cost when predicted positive and when predicted negative."""
    yb = y.astype(bool)
    return np.where(yb, costs.tp, costs.fp), np.where(yb, costs.fn, costs.tn)


def make_split(
    dataset: Dataset, train_rows: np.ndarray, val_rows: np.ndarray | None, device: torch.device
) -> tuple[Split, Preprocessor]:
    """Fit preprocessing on ``train_rows`` only and build the training (and validation) tensors."""
    pre = Preprocessor.fit(dataset.features.iloc[train_rows])

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)

    x = tensor(pre.transform(dataset.features.iloc[train_rows]))
    y = tensor(dataset.y[train_rows])
    # Per-example costs train through cost-proportionate sample weights (the searched pos_weight
    # multiplies the positives' on top); constant costs need none: pos_weight alone carries them.
    costs = dataset.costs.take(train_rows)
    sample_weight = (
        tensor(costs.training_weights(dataset.y[train_rows])) if costs.per_example else None
    )
    if val_rows is None:
        return Split(x, y, sample_weight=sample_weight), pre
    if_pos, if_neg = outcome_costs(dataset.y[val_rows], dataset.costs.take(val_rows))
    return Split(
        x,
        y,
        tensor(pre.transform(dataset.features.iloc[val_rows])),
        tensor(dataset.y[val_rows]),
        tensor(if_pos),
        tensor(if_neg),
        sample_weight,
    ), pre

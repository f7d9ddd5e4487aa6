"""The weighted BCE-with-logits loss, through torch's own implementation, and its gradient.

``binary_cross_entropy_with_logits(x, y, pos_weight=w)`` is exactly the seed formula
``-(w*y*logsigmoid(x) + (1-y)*logsigmoid(-x))``; the tests prove it, extreme logits included.
Training uses the closed-form gradient below instead of autograd (one fused expression per step);
the tests check it against autograd through :func:`weighted_bce`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["weighted_bce", "weighted_bce_grad"]


def weighted_bce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    pos_weight: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-member mean weighted BCE.

    ``logits`` is ``(K, b)`` for a population of K members (or ``(b,)`` for one model), ``targets``
    ``(b,)`` in {0, 1}, ``pos_weight`` ``(K, 1)`` (or one element), ``sample_weight`` ``(b,)`` or None.
    Returns the mean over the batch for each member, shape ``(K,)`` (or a scalar).
    """
    per_example = F.binary_cross_entropy_with_logits(
        logits,
        targets.expand_as(logits),
        weight=sample_weight,
        pos_weight=pos_weight,
        reduction="none",
    )
    return per_example.mean(dim=-1)


def weighted_bce_grad(
    logits: torch.Tensor,
    targets: torch.Tensor,
    pos_weight: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The gradient of :func:`weighted_bce` (each member's batch mean) with respect to ``logits``.

    d/dx of ``-s*(w*y*logsigmoid(x) + (1-y)*logsigmoid(-x))`` is ``s*((w*y + 1 - y)*sigmoid(x) - w*y)``;
    divided by the batch size for the mean. Finite for any finite logit, extreme ones included.
    """
    wy = pos_weight * targets  # (K, b)
    grad = (wy + (1 - targets)) * torch.sigmoid(logits) - wy
    if sample_weight is not None:
        grad = grad * sample_weight
    return grad / logits.shape[-1]

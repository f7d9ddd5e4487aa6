"""FlatAdam takes the steps torch.optim.Adam takes, on both its fused and its plain path."""

from __future__ import annotations

import pytest
import torch

from fnsearch.optim import FlatAdam


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_flat_adam_equals_torch_adam(fused, weight_decay):
    """Check that 25 steps of FlatAdam match torch.optim.Adam from the same start and gradients."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(4, 9, generator=g)
    grads = [torch.randn(4, 9, generator=g) * 10 ** (i % 4 - 2) for i in range(25)]
    ref = torch.nn.Parameter(start.clone())
    torch_opt = torch.optim.Adam([ref], lr=3e-3, weight_decay=weight_decay)
    mine = FlatAdam(start.clone(), lr=3e-3, weight_decay=weight_decay, fused=fused)
    for grad in grads:
        ref.grad = grad.clone()
        torch_opt.step()
        mine.step(grad.clone())
    torch.testing.assert_close(mine.param, ref.detach(), atol=1e-6, rtol=1e-5)


def test_auto_uses_the_fused_kernel_on_cpu():
    """Check that the default picks torch's fused kernel where this build has it (CPU does)."""
    assert FlatAdam(torch.zeros(2, 2), lr=1e-3).fused


def test_divergence_shows_in_finite_rows():
    """Check that an overflowing or NaN gradient marks only its member's row, for good."""
    opt = FlatAdam(torch.zeros(3, 4), lr=1e-3)
    grad = torch.ones(3, 4)
    grad[1, 2] = 3e38  # squares to inf in float32: the update is 0 but the member diverged
    grad[2, 0] = float("nan")
    opt.step(grad)
    for _ in range(3):
        opt.step(torch.ones(3, 4))
    assert opt.finite_rows().tolist() == [True, False, False]

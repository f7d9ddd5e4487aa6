"""The weighted loss is torch's own and equals the seed formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fnsearch.loss import weighted_bce, weighted_bce_grad


def seed_formula(x, y, w):
    return -(w * y * F.logsigmoid(x) + (1 - y) * F.logsigmoid(-x))


@pytest.fixture
def batch():
    x = torch.cat([torch.randn(64) * 3, torch.tensor([100.0, -100.0, 100.0, -100.0])])
    y = torch.cat([(torch.rand(64) < 0.3).float(), torch.tensor([1.0, 1.0, 0.0, 0.0])])
    return x, y


@pytest.mark.parametrize("w", [0.1, 1.0, 5.0, 123.0])
def test_scalar_weight_equals_seed_formula(batch, w):
    """Check that a one-element pos_weight gives the seed formula, extreme logits included."""
    x, y = batch
    pw = torch.tensor([w], dtype=x.dtype, device=x.device)
    got = weighted_bce(x, y, pw)
    want = seed_formula(x, y, w).mean()
    assert torch.allclose(got, want, atol=1e-6, rtol=1e-6)


def test_module_form_equals_seed_formula(batch):
    """Check that BCEWithLogitsLoss(pos_weight=w) is the same loss."""
    x, y = batch
    w = torch.tensor([4.0])
    got = torch.nn.BCEWithLogitsLoss(pos_weight=w)(x, y)
    assert torch.allclose(got, seed_formula(x, y, 4.0).mean(), atol=1e-6)
    assert torch.allclose(got, weighted_bce(x, y, w), atol=1e-6)


def test_per_sample_weights_on_positive_term(batch):
    """Check that per-sample positive weights (w_i on y_i = 1 rows) match the formula per row."""
    x, y = batch
    w_i = torch.rand_like(x) * 10 + 0.5
    # weight=y*w_i + (1-y) with pos_weight=1 weights exactly the positive term by w_i
    got = F.binary_cross_entropy_with_logits(x, y, weight=y * w_i + (1 - y), reduction="none")
    assert torch.allclose(got, seed_formula(x, y, w_i), atol=1e-6)


def test_unit_weight_is_plain_bce(batch):
    """Check that w = 1 equals the unweighted loss."""
    x, y = batch
    got = weighted_bce(x, y, torch.tensor([1.0]))
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(x, y), atol=1e-6)


def test_population_shape_gives_each_member_its_weight(batch):
    """Check that (K, b) logits with (K, 1) weights give each member its own seed-formula loss."""
    x, y = batch
    ws = torch.tensor([[0.5], [2.0], [9.0]])
    logits = torch.stack([x, x * 0.5, -x])
    got = weighted_bce(logits, y, ws)
    for k in range(3):
        assert torch.allclose(got[k], seed_formula(logits[k], y, ws[k, 0]).mean(), atol=1e-6)


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_closed_form_gradient_equals_autograd(batch, with_sample_weight):
    """Check that weighted_bce_grad is autograd's gradient of weighted_bce, extreme logits included."""
    x, y = batch
    logits = torch.stack([x, x * 0.5, -x]).requires_grad_()
    ws = torch.tensor([[0.5], [2.0], [90.0]])
    sw = torch.rand_like(x) + 0.5 if with_sample_weight else None
    weighted_bce(logits, y, ws, sw).sum().backward()
    got = weighted_bce_grad(logits.detach(), y, ws, sw)
    torch.testing.assert_close(got, logits.grad, atol=1e-7, rtol=1e-5)

"""Population training: each member trains exactly as it would alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fnsearch.errors import DeviceError
from fnsearch.loss import weighted_bce, weighted_bce_grad
from fnsearch.models import Architecture, PopulationNet, sequential
from fnsearch.train import Split, TrainConfig, resolve_device, train_population


def toy_split(n=300, d=6, n_val=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + n_val, d, generator=g)
    logit = x[:, 0] * 1.5 - x[:, 1] + 0.5 * x[:, 2] ** 2 - 1.5
    y = (torch.rand(n + n_val, generator=g) < torch.sigmoid(logit)).float()
    yv = y[n:]
    cost_if_pos = torch.where(yv > 0, 0.0, 1.0)
    cost_if_neg = torch.where(yv > 0, 5.0, 0.0)
    return Split(x[:n], y[:n], x[n:], yv, cost_if_pos, cost_if_neg)


def config(**kw):
    base = {
        "hidden": (16,),
        "activation": "relu",
        "epochs": 15,
        "batch_size": 32,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "patience": 0,
        "seed": 0,
    }
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("patience", [0, 3])
@pytest.mark.parametrize("hidden", [(), (16,), (8, 8)])
def test_batched_population_equals_members_trained_alone(hidden, patience):
    """Check that K members trained together end with the parameters and validation logits each
    gets when trained alone (same initialisation, same minibatch order), early stopping included."""
    split, cfg = toy_split(), config(hidden=hidden, patience=patience)
    weights = np.array([0.3, 1.0, 5.0, 40.0])
    together = train_population(split, weights, cfg)
    for k, w in enumerate(weights):
        alone = train_population(split, np.array([w]), cfg)
        assert alone.epochs[0] == together.epochs[k]
        for a, b in zip(alone.net.parameters(), together.net.parameters(), strict=True):
            torch.testing.assert_close(a[0], b[k], atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(
            alone.val_logits[0], together.val_logits[k], atol=1e-4, rtol=1e-4
        )


def test_early_stopping_freezes_members_independently():
    """Check that with patience members stop at different epochs and keep their best parameters."""
    fit = train_population(toy_split(), np.array([0.05, 1.0, 200.0]), config(epochs=60, patience=3))
    assert (fit.epochs >= 1).all() and (fit.epochs <= 60).all()
    assert len(set(fit.epochs.tolist())) > 1


def test_fixed_epochs_snapshot_each_member_at_its_own_count():
    """Check that fixed_epochs trains member k for exactly epochs[k] epochs."""
    split, cfg = toy_split(), config()
    both = train_population(split, np.array([1.0, 1.0]), cfg, fixed_epochs=np.array([3, 9]))
    three = train_population(split, np.array([1.0]), config(epochs=3))
    nine = train_population(split, np.array([1.0]), config(epochs=9))
    assert both.epochs.tolist() == [3, 9]
    for p, p3, p9 in zip(
        both.net.parameters(), three.net.parameters(), nine.net.parameters(), strict=True
    ):
        torch.testing.assert_close(p[0], p3[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(p[1], p9[0], atol=1e-5, rtol=1e-4)


def test_a_diverging_member_fails_alone():
    """Check that a diverging member (its squared gradients overflow) is marked failed alone and
    leaves the others as they are when trained alone."""
    split, cfg = toy_split(), config(epochs=5)
    weights = np.array([1.0, 1e38])
    fit = train_population(split, weights, cfg)
    assert fit.failed_epoch[0] == -1 and fit.failed_epoch[1] >= 1
    alone = train_population(split, np.array([1.0]), cfg)
    np.testing.assert_allclose(alone.val_logits[0], fit.val_logits[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("hidden", [(), (16,), (8, 5)])
def test_hand_written_backward_equals_autograd(hidden, activation):
    """Check that PopulationNet.backward gives autograd's gradient of the summed member losses."""
    net = PopulationNet(Architecture(6, hidden, activation), 3, seed=2)
    with torch.no_grad():
        net.flat.add_(torch.randn_like(net.flat) * 0.3)  # members differ
    x, y = torch.randn(40, 6), (torch.rand(40) < 0.3).float()
    w, sw = torch.tensor([[0.5], [3.0], [20.0]]), torch.rand(40) + 0.5
    weighted_bce(net(x), y, w, sw).sum().backward()
    grad = torch.zeros_like(net.flat)
    layers = net.layers(net.flat.detach())
    logits, cache = net.forward_cached(x, layers)
    net.backward(cache, weighted_bce_grad(logits, y, w, sw), layers, net.layers(grad))
    torch.testing.assert_close(grad, net.flat.grad, atol=1e-6, rtol=1e-5)


def test_member_state_loads_into_plain_torch_sequential():
    """Check that a member's state_dict loads into torch.nn.Sequential with the same outputs."""
    arch = Architecture(6, (16, 8), "tanh")
    net = PopulationNet(arch, 3, seed=1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(20, 6)
    plain = sequential(arch)
    plain.load_state_dict(net.state_of(2))
    torch.testing.assert_close(plain(x).squeeze(-1), net(x)[2], atol=1e-6, rtol=1e-5)


def test_device_resolution():
    """Check that auto picks what exists and an explicit CUDA device without CUDA is a clear error."""
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="sees no CUDA GPU; use device = 'auto' or 'cpu'"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_population_matches_cpu():
    """Check that the same population trained on CUDA gives the CPU's validation logits."""
    split = toy_split()
    cuda = Split(*(t.cuda() if t is not None else None for t in vars(split).values()))
    cpu_fit = train_population(split, np.array([1.0, 5.0]), config())
    gpu_fit = train_population(cuda, np.array([1.0, 5.0]), config())
    np.testing.assert_allclose(cpu_fit.val_logits, gpu_fit.val_logits, atol=1e-3, rtol=1e-3)


def test_auto_weight_decay_shrinks_with_the_rows():
    """Check that weight_decay = auto is 8 / training rows of the fit, and a number stays itself."""
    split = toy_split(n=400)
    assert config(weight_decay="auto").weight_decay_for(split) == pytest.approx(8 / 400)
    assert config(weight_decay=1e-3).weight_decay_for(split) == 1e-3

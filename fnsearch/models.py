"""Small torch models trained as a population: K independent members stacked on a leading axis.

Member k's parameters are slices ``[k]`` of each stacked tensor, so one batched matmul evaluates all
members and the summed loss gives every member exactly the gradient it would get alone. Every member
starts from the same initial parameters (common random numbers): trials then differ only by their
weight, and a trial's result does not depend on which population it was trained in.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

__all__ = ["Architecture", "PopulationNet", "from_sequential_state", "to_sequential_state"]

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "gelu": torch.nn.functional.gelu}
# d(act)/d(pre-activation) times an incoming gradient: the kernels autograd itself uses.
_ACTIVATION_GRADS = {
    "relu": lambda grad, pre, out: torch.ops.aten.threshold_backward(grad, out, 0),
    "tanh": lambda grad, pre, out: torch.ops.aten.tanh_backward(grad, out),
    "gelu": lambda grad, pre, out: torch.ops.aten.gelu_backward(grad, pre),
}


@dataclass(frozen=True)
class Architecture:
    """Layer sizes and activation; ``hidden=()`` is logistic regression."""

    n_in: int
    hidden: tuple[int, ...]
    activation: str = "relu"

    @property
    def sizes(self) -> list[int]:
        return [self.n_in, *self.hidden, 1]


class PopulationNet(torch.nn.Module):
    """K copies of an MLP (or logistic regression) with stacked parameters.

    ``weights[i]`` has shape ``(K, fan_in, fan_out)`` and ``biases[i]`` ``(K, 1, fan_out)``.
    ``forward(x)`` maps a shared ``(n, n_in)`` batch to logits of shape ``(K, n)``.
    """

    def __init__(
        self, arch: Architecture, n_members: int, *, seed: int, device: torch.device | str = "cpu"
    ) -> None:
        super().__init__()
        self.arch = arch
        self.n_members = n_members
        self._act = _ACTIVATIONS[arch.activation]
        # All parameters live in one (K, P) tensor: the optimiser and the per-member bookkeeping
        # (snapshots, freezing) then touch one tensor per step instead of two per layer.
        self._shapes = [(fan_in, fan_out) for fan_in, fan_out in itertools.pairwise(arch.sizes)]
        # One member's initialisation, drawn on the CPU so it is the same on every device, then
        # repeated: torch.nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both.
        gen = torch.Generator().manual_seed(seed)
        pieces = []
        for fan_in, fan_out in self._shapes:
            bound = 1.0 / math.sqrt(fan_in)
            pieces.append((torch.rand(fan_in * fan_out, generator=gen) * 2 - 1) * bound)
            pieces.append((torch.rand(fan_out, generator=gen) * 2 - 1) * bound)
        one = torch.cat(pieces)
        self.flat = torch.nn.Parameter(one.expand(n_members, -1).clone().to(device))

    def layers(self, flat: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views ``(W (K, fan_in, fan_out), b (K, 1, fan_out))`` of each layer."""
        flat = self.flat if flat is None else flat
        out, start = [], 0
        for fan_in, fan_out in self._shapes:
            w = flat[:, start : start + fan_in * fan_out].view(-1, fan_in, fan_out)
            start += fan_in * fan_out
            b = flat[:, start : start + fan_out].view(-1, 1, fan_out)
            start += fan_out
            out.append((w, b))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(x, self.layers(), keep=False)[0]

    def forward_cached(
        self, x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]], *, keep: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(K, n)`` with parameters ``layers`` (views from :meth:`layers`, made once per
        fit: slicing them anew costs more than a small layer's arithmetic) and, with ``keep``,
        what :meth:`backward` needs: ``[a0, z1, a1, z2, a2, ...]``, each layer's input and
        pre-activation, ``a0`` the (expanded) batch."""
        *hidden, (w_out, b_out) = layers
        a = x.expand(self.n_members, -1, -1)
        cache = [a]
        for w, b in hidden:
            z = torch.baddbmm(b, a, w)
            a = self._act(z)
            if keep:
                cache += [z, a]
        # The output layer has width 1: a multiply and a sum beat K matrix-vector products.
        return (a * w_out.transpose(1, 2)).sum(-1) + b_out[:, :, 0], cache

    @torch.no_grad()
    def backward(
        self,
        cache: list[torch.Tensor],
        dlogits: torch.Tensor,
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        grads: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        """Write d(loss)/d(parameters) into ``grads`` (views of a tensor shaped like ``flat``) given
        d(loss)/d(logits) ``(K, n)``: hand-written backpropagation, so a training step builds no
        autograd graph. Each member's gradient involves only its own slice, as with autograd on
        the summed loss."""
        act_grad = _ACTIVATION_GRADS[self.arch.activation]
        d = dlogits.unsqueeze(-1)  # (K, n, 1): the gradient at the output layer's pre-activation
        for i in range(len(layers) - 1, -1, -1):
            a_in, (w, _), (gw, gb) = cache[2 * i], layers[i], grads[i]
            last = i == len(layers) - 1
            gw.copy_(
                (a_in * d).sum(1).unsqueeze(-1) if last else torch.bmm(a_in.transpose(1, 2), d)
            )
            gb.copy_(d.sum(dim=1, keepdim=True))
            if i > 0:
                da = d * w.transpose(1, 2) if last else torch.bmm(d, w.transpose(1, 2))
                d = act_grad(da, cache[2 * i - 1], a_in)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, *, budget: int = 1 << 24) -> torch.Tensor:
        """``forward`` without gradients, in row chunks so hidden activations (K x rows x width)
        stay under ``budget`` floats: a 1M-row evaluation must not need gigabytes."""
        width = max([1, *self.arch.hidden])
        step = max(1024, budget // (self.n_members * width))
        if x.shape[0] <= step:
            return self(x)
        return torch.cat([self(x[i : i + step]) for i in range(0, x.shape[0], step)], dim=1)

    def state_of(self, member: int) -> dict[str, torch.Tensor]:
        """Member ``member``'s parameters in ``torch.nn.Sequential`` naming (see below)."""
        layers = self.layers(self.flat[member : member + 1])
        return to_sequential_state([w[0] for w, _ in layers], [b[0] for _, b in layers])

    def load_member_states(self, states: list[dict[str, torch.Tensor]]) -> None:
        """Set every member's parameters from Sequential-style state dicts (one per member)."""
        with torch.no_grad():
            for m, state in enumerate(states):
                ws, bs = from_sequential_state(state)
                if len(ws) != len(self._shapes):
                    raise KeyError(f"{len(ws)} layers in the state, {len(self._shapes)} expected")
                for (w, b), wv, bv in zip(self.layers(), ws, bs, strict=True):
                    w[m].copy_(wv)
                    b[m].copy_(bv)


def to_sequential_state(
    weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Parameters as the state_dict of ``Sequential(Linear, act, Linear, ..., Linear)``.

    Linear layers sit at even indices (0, 2, 4, ...), so ``model.pt`` loads into a plain torch model.
    """
    state = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        state[f"{2 * i}.weight"] = w.detach().t().contiguous().cpu()
        state[f"{2 * i}.bias"] = b.detach().reshape(-1).contiguous().cpu()
    return state


def from_sequential_state(
    state: dict[str, torch.Tensor],
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The inverse of :func:`to_sequential_state` (weights ``(fan_in, fan_out)``, biases ``(1, out)``).

    Raises ``ValueError`` naming what is wrong when ``state`` is not such a state_dict (a model file
    from elsewhere, or tampered with).
    """
    _check_sequential_state(state)
    n_layers = len(state) // 2
    weights = [state[f"{2 * i}.weight"].t() for i in range(n_layers)]
    biases = [state[f"{2 * i}.bias"].reshape(1, -1) for i in range(n_layers)]
    return weights, biases


def sequential(arch: Architecture) -> torch.nn.Sequential:
    """A plain torch model that ``model.pt`` loads into."""
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}[arch.activation]
    layers: list[torch.nn.Module] = []
    sizes = arch.sizes
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


def _check_sequential_state(state: dict[str, torch.Tensor]) -> None:
    n_layers = len(state) // 2
    expected = {f"{2 * i}.{kind}" for i in range(n_layers) for kind in ("weight", "bias")}
    if n_layers == 0 or set(state) != expected:
        raise ValueError(f"unexpected keys {sorted(state)[:6]}")
    fan_in = None
    for i in range(n_layers):
        w, b = state[f"{2 * i}.weight"], state[f"{2 * i}.bias"]
        if not (w.is_floating_point() and b.is_floating_point()):
            raise ValueError(f"layer {i} is not floating point")
        if (
            w.dim() != 2
            or b.shape != (w.shape[0],)
            or (fan_in is not None and w.shape[1] != fan_in)
        ):
            raise ValueError(f"layer {i} has shapes {tuple(w.shape)} and {tuple(b.shape)}")
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise ValueError(f"layer {i} holds non-finite parameters")
        fan_in = w.shape[0]
    if fan_in != 1:
        raise ValueError(f"the last layer has {fan_in} outputs, not 1")

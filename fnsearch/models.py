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
        # One member's initialisation, drawn on the CPU so it is the same on every device, then
        # repeated: torch.nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both.
        gen = torch.Generator().manual_seed(seed)
        weights, biases = [], []
        for fan_in, fan_out in zip(arch.sizes[:-1], arch.sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(1, fan_out, generator=gen) * 2 - 1) * bound
            weights.append(torch.nn.Parameter(w.expand(n_members, -1, -1).clone().to(device)))
            biases.append(torch.nn.Parameter(b.expand(n_members, -1, -1).clone().to(device)))
        self.weights = torch.nn.ParameterList(weights)
        self.biases = torch.nn.ParameterList(biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.n_members
        w0, b0 = self.weights[0], self.biases[0]
        # First layer as one (n, d) x (d, K*h) matmul: the input is shared by every member.
        h = (x @ w0.permute(1, 0, 2).reshape(w0.shape[1], -1)).reshape(x.shape[0], k, -1)
        h = h.transpose(0, 1) + b0
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            h = torch.baddbmm(b, self._act(h), w)
        return h.squeeze(-1)

    def state_of(self, member: int) -> dict[str, torch.Tensor]:
        """Member ``member``'s parameters in ``torch.nn.Sequential`` naming (see below)."""
        return to_sequential_state(
            [w[member] for w in self.weights], [b[member] for b in self.biases]
        )

    def load_member_states(self, states: list[dict[str, torch.Tensor]]) -> None:
        """Set every member's parameters from Sequential-style state dicts (one per member)."""
        with torch.no_grad():
            for m, state in enumerate(states):
                ws, bs = from_sequential_state(state)
                for p, v in zip(self.weights, ws, strict=True):
                    p[m].copy_(v)
                for p, v in zip(self.biases, bs, strict=True):
                    p[m].copy_(v)


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
    """The inverse of :func:`to_sequential_state` (weights ``(fan_in, fan_out)``, biases ``(1, out)``)."""
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

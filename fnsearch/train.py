"""Training a population of weighted-BCE models on resident tensors.

The loop is fit -> epoch -> step. Minibatches are index slices of tensors already on the device; a
step is one forward pass, the closed-form loss gradient, hand-written backpropagation and one Adam
update on the flat parameter tensor - no autograd graph, no optimiser bookkeeping. The only
host-device sync is one per epoch (the "is everyone stopped?" check). Early stopping is per
member: a member's best parameters are snapshotted when its validation cost improves and frozen
once it has not improved for ``patience`` epochs; it keeps computing (its arithmetic never touches
the others) until every member is done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DeviceError
from .loss import weighted_bce_grad
from .models import Architecture, PopulationNet
from .optim import FlatAdam

__all__ = ["FitResult", "Split", "TrainConfig", "resolve_device", "train_population"]

log = logging.getLogger("fnsearch")

# weight_decay = "auto" is this over the training rows: an N(0, 1/8) prior on every parameter.
# Chosen by bench/quality.py: German credit needs ~0.01 to match logistic regression, the
# synthetic quadratic problem (4000 rows) loses its edge much above ~0.003.
WEIGHT_DECAY_PER_ROW = 8.0


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit CUDA device must exist."""
    if requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"[model] device = {requested!r} but this torch build sees no CUDA GPU; "
                "use device = 'auto' or 'cpu'"
            )
        dev = torch.device(requested if ":" in requested else "cuda:0")
        if dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"[model] device = {requested!r} but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist; pick another"
            )
        return dev
    return torch.device("cpu")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation settings of one study (from ``[model]``)."""

    hidden: tuple[int, ...]
    activation: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float | str  # "auto": WEIGHT_DECAY_PER_ROW / training rows of each fit
    patience: int
    seed: int

    @classmethod
    def from_spec(cls, spec) -> TrainConfig:
        m = spec.model
        hidden = () if m["kind"] == "logistic" else tuple(m["hidden"])
        return cls(
            hidden,
            m["activation"],
            m["epochs"],
            m["batch_size"],
            m["lr"],
            m["weight_decay"],
            m["patience"],
            spec.study["seed"],
        )

    def weight_decay_for(self, split: Split) -> float:
        """The L2 penalty for a fit on ``split``: ``auto`` scales it as 1 / rows, the MAP penalty of
        one fixed Gaussian prior on the weights when the loss is a per-example mean, so small data
        is regularised hard (German credit: ~0.012) and large data hardly (1M rows: ~1e-5)."""
        if self.weight_decay == "auto":
            return WEIGHT_DECAY_PER_ROW / split.x.shape[0]
        return float(self.weight_decay)

    def arch(self, n_in: int) -> Architecture:
        """The architecture for ``n_in`` input features (one-hot widths differ between folds)."""
        return Architecture(n_in, self.hidden, self.activation)


@dataclass(frozen=True)
class Split:
    """Resident tensors of one training set and its (optional) validation set.

    ``cost_if_pos``/``cost_if_neg`` are each validation row's cost when predicted positive/negative.
    """

    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    cost_if_pos: torch.Tensor | None = None
    cost_if_neg: torch.Tensor | None = None
    sample_weight: torch.Tensor | None = None


@dataclass
class FitResult:
    """What training a population gives back (host arrays, one row per member)."""

    net: PopulationNet  # parameters at each member's best (or fixed) epoch
    epochs: np.ndarray  # epochs each member's parameters were trained for
    failed_epoch: np.ndarray  # first epoch with a non-finite gradient or parameter, -1 when none
    val_logits: np.ndarray | None  # (K, n_val) at the kept parameters, when validated


def train_population(
    split: Split,
    pos_weights: np.ndarray,
    config: TrainConfig,
    *,
    fixed_epochs: np.ndarray | None = None,
    shuffle_seed: int | None = None,
) -> FitResult:
    """Train one member per entry of ``pos_weights``.

    With ``fixed_epochs`` (one count per member) each member keeps its parameters after exactly that
    many epochs and no validation is used; otherwise early stopping on the validation cost at
    threshold 0.5 applies when ``config.patience > 0``. The minibatch order depends only on
    ``shuffle_seed`` (default: the study seed), the same for every member and every population.
    """
    device = split.x.device
    k = len(pos_weights)
    net = PopulationNet(config.arch(split.x.shape[1]), k, seed=config.seed, device=device)
    params = list(net.parameters())
    opt = FlatAdam(net.flat.data, lr=config.lr, weight_decay=config.weight_decay_for(split))
    w = torch.as_tensor(np.asarray(pos_weights, dtype=np.float32), device=device).reshape(k, 1)
    gen = torch.Generator().manual_seed(config.seed if shuffle_seed is None else shuffle_seed)

    # patience 0 means no early stopping: keep the last epoch's parameters.
    validate = fixed_epochs is None and split.x_val is not None and config.patience > 0
    n_epochs = int(np.max(fixed_epochs)) if fixed_epochs is not None else config.epochs
    target_epochs = (
        torch.as_tensor(fixed_epochs, device=device) if fixed_epochs is not None else None
    )
    state = _EpochState.start(params, k, device)
    n = split.x.shape[0]
    for epoch in range(1, n_epochs + 1):
        order = torch.randperm(n, generator=gen).to(device, non_blocking=True)
        _run_epoch(net, opt, split, w, order, config.batch_size)
        state.mark_failed(opt.finite_rows(), epoch)
        if validate:
            state.update_best(net, params, split, epoch, config.patience)
        elif target_epochs is not None:
            state.snapshot(params, target_epochs == epoch, epoch)
        if validate and state.all_done(epoch, n_epochs):
            break
    if validate or fixed_epochs is not None:
        state.restore(params)
    else:
        state.epochs.fill_(n_epochs)
    val_logits = None
    if split.x_val is not None:
        with torch.no_grad():
            val_logits = net.logits(split.x_val).float().cpu().numpy()
    return FitResult(net, state.epochs.cpu().numpy(), state.failed_epoch.cpu().numpy(), val_logits)


@torch.no_grad()
def _run_epoch(
    net: PopulationNet,
    opt: FlatAdam,
    split: Split,
    w: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
) -> None:
    grad = torch.empty_like(net.flat)
    layers, grads = net.layers(net.flat.detach()), net.layers(grad)
    for start in range(0, order.numel(), batch_size):
        idx = order[start : start + batch_size]
        sw = split.sample_weight[idx] if split.sample_weight is not None else None
        logits, cache = net.forward_cached(split.x[idx], layers)
        # Each member's gradient is that of its own mean loss: members share no parameters.
        net.backward(cache, weighted_bce_grad(logits, split.y[idx], w, sw), layers, grads)
        opt.step(grad)


@dataclass
class _EpochState:
    """Per-member bookkeeping kept on the device, so an epoch needs no host sync."""

    best: list[torch.Tensor]
    best_cost: torch.Tensor
    epochs: torch.Tensor
    since_best: torch.Tensor
    stopped: torch.Tensor
    bad: torch.Tensor
    failed_epoch: torch.Tensor

    @classmethod
    def start(cls, params: list[torch.Tensor], k: int, device) -> _EpochState:
        return cls(
            best=[p.detach().clone() for p in params],
            best_cost=torch.full((k,), float("inf"), device=device),
            epochs=torch.zeros(k, dtype=torch.long, device=device),
            since_best=torch.zeros(k, dtype=torch.long, device=device),
            stopped=torch.zeros(k, dtype=torch.bool, device=device),
            bad=torch.zeros(k, dtype=torch.bool, device=device),
            failed_epoch=torch.full((k,), -1, dtype=torch.long, device=device),
        )

    def mark_failed(self, finite: torch.Tensor, epoch: int) -> None:
        # Members share nothing, so one diverging member never touches the others.
        self.bad |= ~finite
        newly = self.bad & (self.failed_epoch < 0)
        self.failed_epoch = torch.where(
            newly, torch.full_like(self.failed_epoch, epoch), self.failed_epoch
        )

    @torch.no_grad()
    def update_best(self, net, params, split: Split, epoch: int, patience: int) -> None:
        logits = net.logits(split.x_val)
        pred = (logits >= 0).float()  # score >= 0.5
        cost = (split.cost_if_neg + pred * (split.cost_if_pos - split.cost_if_neg)).mean(dim=1)
        improved = (cost < self.best_cost) & ~self.stopped & ~self.bad
        self.best_cost = torch.where(improved, cost, self.best_cost)
        self.snapshot(params, improved, epoch)
        self.since_best = torch.where(
            improved, torch.zeros_like(self.since_best), self.since_best + 1
        )
        self.stopped |= self.since_best >= patience

    @torch.no_grad()
    def snapshot(self, params, mask: torch.Tensor, epoch: int) -> None:
        for b, p in zip(self.best, params, strict=True):
            b.copy_(torch.where(mask.view(-1, *([1] * (p.dim() - 1))), p, b))
        self.epochs = torch.where(mask, torch.full_like(self.epochs, epoch), self.epochs)

    def all_done(self, epoch: int, n_epochs: int) -> bool:
        if epoch == n_epochs:
            return False
        return bool((self.stopped | self.bad).all())  # the one host sync per epoch

    @torch.no_grad()
    def restore(self, params) -> None:
        for b, p in zip(self.best, params, strict=True):
            p.copy_(b)

"""Adam on one flat parameter tensor, step for step what ``torch.optim.Adam`` does.

The population's parameters are one ``(K, P)`` tensor with a gradient we compute in closed form, so
the optimiser is one kernel per step: torch's fused Adam kernel (``torch._fused_adam_``, what
``torch.optim.Adam(fused=True)`` runs), or five in-place tensor ops where a torch build lacks it for
the device. ``torch.optim.Adam`` itself would add per-step bookkeeping and, on its first use in a
process, a one-second import of ``torch._dynamo``. The tests check both paths against it (L2 weight
decay as torch applies it: added to the gradient).
"""

from __future__ import annotations

import math

import torch

__all__ = ["FlatAdam"]


class FlatAdam:
    """Adam for a single tensor ``param`` updated in place from gradients passed to :meth:`step`."""

    def __init__(
        self,
        param: torch.Tensor,
        *,
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        self.param = param
        self.lr, self.weight_decay, self.eps = lr, weight_decay, eps
        self.beta1, self.beta2 = betas
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.steps = 0
        self._step_tensor = torch.zeros((), dtype=torch.float32, device=param.device)
        # None: the fused kernel where this torch build has it for the device.
        self.fused = _fused_kernel_works(param.device) if fused is None else fused

    @torch.no_grad()
    def finite_rows(self) -> torch.Tensor:
        """``(K,)``: rows (members) whose parameters and squared-gradient average are all finite.

        A NaN or overflowing gradient stays in the second moment for good (``0.999 * inf = inf``),
        even when the update it causes is zero, so one check per epoch catches every divergence.
        """
        return torch.isfinite(self.param).all(dim=1) & torch.isfinite(self.exp_avg_sq).all(dim=1)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        """One Adam update; ``grad`` may be overwritten (it is scratch space after this call)."""
        self.steps += 1
        if self.fused:
            self._step_tensor += 1  # the kernel reads the step count from the device
            _fused_step(self, grad)
            return
        if self.weight_decay:
            grad.add_(self.param, alpha=self.weight_decay)
        self.exp_avg.lerp_(grad, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        bias1 = 1 - self.beta1**self.steps
        bias2 = 1 - self.beta2**self.steps
        # grad's memory is reused for the denominator: no allocation per step.
        denom = torch.sqrt(self.exp_avg_sq, out=grad).div_(math.sqrt(bias2)).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)


def _fused_step(opt: FlatAdam, grad: torch.Tensor) -> None:
    torch._fused_adam_(
        [opt.param],
        [grad],
        [opt.exp_avg],
        [opt.exp_avg_sq],
        [],
        [opt._step_tensor],
        lr=opt.lr,
        beta1=opt.beta1,
        beta2=opt.beta2,
        weight_decay=opt.weight_decay,
        eps=opt.eps,
        amsgrad=False,
        maximize=False,
    )


_FUSED: dict[str, bool] = {}


def _fused_kernel_works(device: torch.device) -> bool:
    """Whether this torch build has the fused kernel for ``device`` (probed once per device type)."""
    if device.type not in _FUSED:
        probe = FlatAdam(torch.zeros(1, 1, device=device), lr=1e-3, fused=True)
        try:
            probe.step(torch.ones_like(probe.param))
            _FUSED[device.type] = bool(torch.isfinite(probe.param).all())
        except (AttributeError, NotImplementedError, RuntimeError, TypeError):
            _FUSED[device.type] = False
    return _FUSED[device.type]

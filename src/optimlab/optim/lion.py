"""Lion: the sign of an interpolated momentum, found by program search."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import RuleOptimizer, check

__all__ = ["Lion", "lion_update"]


def lion_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    *,
    step: float = 0.0,
    lr: float | Tensor = 1e-4,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
) -> None:
    r"""Lion: step every weight by exactly :math:`\pm\gamma`, the sign of a momentum blend.

    With :math:`g_t` the gradient, step size :math:`\gamma`, :math:`\beta_1, \beta_2` and
    decoupled weight decay :math:`\lambda`:

    .. math::
        w_{t-1} &\leftarrow (1 - \gamma\lambda)\, w_{t-1} \\
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        w_t &= w_{t-1} - \gamma \,\mathrm{sign}(c_t) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    Updates ``param`` and ``exp_avg`` (:math:`m`) in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (same shape).
        exp_avg: the momentum :math:`m`, zeros at the start.
        step: unused (Lion keeps no step count); accepted so every rule has one signature.
        lr: :math:`\gamma` (default 1e-4; 3-10x smaller than AdamW's is the paper's advice).
        betas: :math:`(\beta_1, \beta_2)`: the blend for the step and the momentum's
            decay (default (0.9, 0.99)).
        weight_decay: :math:`\lambda` as it multiplies :math:`\gamma` (default 0).

    Example:
        >>> import torch
        >>> w, g, m = torch.zeros(3), torch.tensor([0.5, -2.0, 0.0]), torch.zeros(3)
        >>> lion_update(w, g, m, lr=0.1)
        >>> w  # ±lr, or 0 where the blend is exactly 0
        tensor([-0.1000,  0.1000,  0.0000])

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023, arXiv:2302.06675
        (Algorithm 2). Reference code: lucidrains/lion-pytorch 0.2.5.

    Notes:
        As lion-pytorch: the decay is applied first, as in the paper's Algorithm 2, and
        :math:`\mathrm{sign}(0) = 0`. With ``decoupled_weight_decay=True`` the class passes
        :math:`\lambda / \gamma_0` (:math:`\gamma_0` the constructor's lr), so the shrink per
        step is :math:`\gamma\lambda/\gamma_0`: :math:`\lambda` itself while the lr is not
        scheduled (decay independent of the lr, as AdamW's paper intends). lion-pytorch
        multiplies by :math:`1 - \gamma\lambda` even when :math:`\lambda = 0`; skipping that
        multiplication by 1 changes no bit.
    """
    beta1, beta2 = betas
    if weight_decay != 0:
        param.mul_(1.0 - lr * weight_decay)  # w ← (1 - γλ)·w
    c = exp_avg.clone().mul_(beta1).add(grad, alpha=1.0 - beta1)  # c_t = β1·m + (1-β1)·g
    param.add_(c.sgn_(), alpha=-lr)  # type: ignore[arg-type]  # w -= γ·sign(c_t)
    exp_avg.mul_(beta2).add_(grad, alpha=1.0 - beta2)  # m_t = β2·m + (1-β2)·g


class Lion(RuleOptimizer):
    """Lion; drop-in for ``lion_pytorch.Lion`` (0.2.5).

    The update is :func:`lion_update`. State per parameter: ``exp_avg`` (no step count), as
    lion-pytorch, so state_dicts move between the two. Bad hyperparameters raise
    ``ValueError`` (lion-pytorch asserts). ``use_triton=True`` raises
    ``NotImplementedError`` (use ``fused=True``, the compiled form of the rule);
    ``decoupled_weight_decay`` divides the weight decay by the constructor's lr, as
    lion-pytorch does.
    """

    rule = staticmethod(lion_update)
    state_keys = ("exp_avg",)
    hyperparams = ("lr", "betas", "weight_decay")

    def __init__(
        self,
        params: Any,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        use_triton: bool = False,
        decoupled_weight_decay: bool = False,
        *,
        fused: bool | None = None,
    ) -> None:
        check(lr > 0.0, "learning rate (must be > 0)", lr)
        for i, beta in enumerate(betas):
            check(0.0 <= beta <= 1.0, f"beta parameter at index {i} (must be in [0, 1])", beta)
        if use_triton:
            raise NotImplementedError(
                "optimlab.optim.Lion has no Triton kernel; use fused=True (the compiled rule) "
                "or lion_pytorch.Lion(use_triton=True)"
            )
        #: the constructor's lr: ``decoupled_weight_decay`` divides λ by it (lion-pytorch's
        #: ``_init_lr``; like it, not part of the state_dict)
        self.init_lr = lr
        self.decoupled_weight_decay = decoupled_weight_decay
        defaults = {"lr": lr, "betas": betas, "weight_decay": weight_decay, "fused": fused}
        super().__init__(params, defaults)

    def _rule_kwargs(self, group: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._rule_kwargs(group)
        if self.decoupled_weight_decay:
            kwargs["weight_decay"] = group["weight_decay"] / self.init_lr
        return kwargs

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        state["exp_avg"] = torch.zeros_like(p)
        return state

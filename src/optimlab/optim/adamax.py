"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import (
    RuleOptimizer,
    check_adam_family,
    check_tensor_lr,
)

__all__ = ["Adamax", "adamax_update"]


def adamax_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_inf: Tensor,
    *,
    step: float,
    lr: float | Tensor = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""Adamax: Adam's step divided by a decaying maximum of :math:`|g|` instead of a root mean.

    With :math:`g_t` the gradient (negated when maximizing), step size :math:`\gamma`,
    :math:`\beta_1, \beta_2` and weight decay :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda w_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        w_t &= w_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{u_t}

    Updates ``param``, ``exp_avg`` (:math:`m`) and ``exp_inf`` (:math:`u`) in place;
    ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (real or complex, same shape).
        exp_avg, exp_inf: first moment and infinity-norm buffers, zeros at the start.
        step: the step count :math:`t` after incrementing it (1 on the first step).
        lr: :math:`\gamma`, float or 0-dim tensor (default 2e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon`, added to :math:`|g_t|` (default 1e-8).
        weight_decay: :math:`\lambda`, L2 penalty added to the gradient (default 0).
        maximize: ascend instead of descend (default False).

    Example:
        >>> import torch
        >>> w, g = torch.ones(3), torch.full((3,), 0.5)
        >>> m, u = torch.zeros(3), torch.zeros(3)
        >>> adamax_update(w, g, m, u, step=1.0, lr=0.1)
        >>> w  # the first step moves every weight by about lr
        tensor([0.9000, 0.9000, 0.9000])

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2014, arXiv:1412.6980,
        Section 7.1 (Algorithm 2).

    Notes:
        The paper has no :math:`\epsilon`: its :math:`u_t = \max(\beta_2 u_{t-1}, |g_t|)` can be
        0 for a parameter whose gradients are all 0. torch (and so this rule) adds
        :math:`\epsilon` to :math:`|g_t|` inside the maximum, so :math:`u_t \ge \epsilon`.
        For complex parameters :math:`|g|` is taken on the real and imaginary parts separately.
    """
    beta1, beta2 = betas
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        param, grad, exp_avg, exp_inf = map(torch.view_as_real, (param, grad, exp_avg, exp_inf))
    m, u = exp_avg, exp_inf
    m.lerp_(grad, 1 - beta1)  # m_t = β1·m + (1-β1)·g
    torch.maximum(u.mul_(beta2), grad.abs().add_(eps), out=u)  # u_t = max(β2·u, |g| + ε)
    clr = lr / (1 - beta1**step)  # γ / (1 - β1^t)
    param.addcdiv_(m, u, value=-clr)  # type: ignore[arg-type]  # w -= γ/(1-β1^t) · m_t/u_t


class Adamax(RuleOptimizer):
    """Adamax; drop-in for ``torch.optim.Adamax``.

    The update is :func:`adamax_update`. State per parameter: ``step``, ``exp_avg``,
    ``exp_inf`` — torch's names, so state_dicts move between the two. ``foreach`` is
    accepted and runs the same rule; ``fused=True`` (which torch's Adamax lacks) runs the
    compiled form of the rule; ``capturable`` and ``differentiable`` raise
    ``NotImplementedError``.
    """

    rule = staticmethod(adamax_update)
    state_keys = ("exp_avg", "exp_inf")
    hyperparams = ("lr", "betas", "eps", "weight_decay", "maximize")

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check_adam_family(lr, eps, betas, weight_decay)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
            "fused": fused,
        }
        super().__init__(params, defaults)

"""Adadelta: step sizes from the ratio of two moving root mean squares."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import RuleOptimizer, check, check_tensor_lr

__all__ = ["Adadelta", "adadelta_update"]


def adadelta_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    acc_delta: Tensor,
    *,
    step: float = 0.0,
    lr: float | Tensor = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""Adadelta: scale the gradient by RMS(past updates) / RMS(gradients).

    With decay :math:`\rho`, learning rate :math:`\gamma` (a plain multiplier, 1 by default),
    weight decay :math:`\lambda`, gradient average :math:`v` and update average :math:`u`:

    .. math::
        g_t &= \nabla L(w_t) + \lambda w_t \\
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta w_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} \, g_t \\
        u_t &= \rho u_{t-1} + (1 - \rho) \Delta w_t^2 \\
        w_{t+1} &= w_t - \gamma \Delta w_t

    Updates ``param``, ``square_avg`` (:math:`v`) and ``acc_delta`` (:math:`u`) in place;
    ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (real or complex).
        square_avg: :math:`v`, the moving average of squared gradients.
        acc_delta: :math:`u`, the moving average of squared updates.
        step: unused by the math; torch counts steps in the state all the same.
        lr: :math:`\gamma`, float or 0-dim tensor (default 1.0).
        rho: :math:`\rho` (default 0.9).
        eps: :math:`\epsilon` (default 1e-6).
        weight_decay: :math:`\lambda` (default 0).
        maximize: ascend instead of descend (default False).

    Example:
        >>> import torch
        >>> w, g = torch.ones(2), torch.tensor([1.0, -1.0])
        >>> v, u = torch.zeros(2), torch.zeros(2)
        >>> adadelta_update(w, g, v, u)
        >>> w  # the first step is √ε/√(0.1+ε) ≈ 0.0032
        tensor([0.9968, 1.0032])

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012, arXiv:1212.5701.

    Notes:
        As in the paper and torch, :math:`\epsilon` sits inside both roots (so the very first
        step is of order :math:`\sqrt\epsilon`, not zero). The paper has no learning rate;
        torch multiplies the update by :math:`\gamma` (default 1, i.e. the paper).
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    v, u = square_avg, acc_delta
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        v, u, grad = map(torch.view_as_real, (v, u, grad))
    v.mul_(rho).addcmul_(grad, grad, value=1 - rho)  # v_t = ρ·v + (1-ρ)·g²
    std = v.add(eps).sqrt_()  # √(v_t + ε)
    delta = u.add(eps).sqrt_()  # √(u + ε)
    delta.div_(std).mul_(grad)  # Δw_t = √(u+ε)/√(v_t+ε) · g
    u.mul_(rho).addcmul_(delta, delta, value=1 - rho)  # u_t = ρ·u + (1-ρ)·Δw²
    if torch.is_complex(param):
        delta = torch.view_as_complex(delta)
    param.add_(delta, alpha=-lr)  # type: ignore[arg-type]  # w -= γ·Δw_t
    return None


class Adadelta(RuleOptimizer):
    """Adadelta; drop-in for ``torch.optim.Adadelta``. The update is :func:`adadelta_update`.

    State per parameter: ``step``, ``square_avg``, ``acc_delta``, torch's names. Adds a
    keyword-only ``fused`` (torch has none): ``fused=True`` runs the compiled form of the rule.
    ``foreach`` is accepted and runs the same rule; ``capturable`` and ``differentiable``
    raise ``NotImplementedError``.
    """

    rule = staticmethod(adadelta_update)
    state_keys = ("square_avg", "acc_delta")
    hyperparams = ("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check(0.0 <= lr, "learning rate", lr)
        check(0.0 <= rho <= 1.0, "rho value", rho)
        check(0.0 <= eps, "epsilon value", eps)
        check(0.0 <= weight_decay, "weight_decay value", weight_decay)
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

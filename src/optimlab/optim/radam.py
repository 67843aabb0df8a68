"""RAdam: Adam with the variance of its adaptive step rectified (and RAdamW)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import (
    RuleOptimizer,
    check_adam_family,
    check_tensor_lr,
)

__all__ = ["RAdam", "radam_update"]


def radam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: float | Tensor,
    lr: float | Tensor = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None:
    r"""RAdam: momentum SGD until the second moment is trustworthy, then rectified Adam.

    With :math:`g_t` the gradient (negated when maximizing), step size :math:`\gamma`,
    :math:`\beta_1, \beta_2` and weight decay :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda w_{t-1}          \quad\text{(RAdam)} \qquad
        w_{t-1} \leftarrow (1 - \gamma\lambda) w_{t-1} \quad\text{(RAdamW)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        w_t &= w_{t-1} - \gamma \frac{m_t}{1 - \beta_1^t} \cdot
            \begin{cases}
                r_t \, \sqrt{1 - \beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > 5 \\
                1 & \text{otherwise}
            \end{cases}

    Updates ``param``, ``exp_avg`` (:math:`m`) and ``exp_avg_sq`` (:math:`v`) in place;
    ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (real or complex, same shape).
        exp_avg, exp_avg_sq: first and second moment buffers, zeros at the start.
        step: the step count :math:`t` after incrementing it (1 on the first step); a 0-dim
            tensor when compiled, which selects the branch-free form.
        lr: :math:`\gamma`, float or 0-dim tensor (default 1e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon`, added to :math:`\sqrt{v_t}` (default 1e-8).
        weight_decay: :math:`\lambda` (default 0).
        maximize: ascend instead of descend (default False).
        decoupled_weight_decay: shrink the weights directly (RAdamW) instead of adding
            :math:`\lambda w` to the gradient (default False).

    Example:
        >>> import torch
        >>> w, g = torch.ones(3), torch.full((3,), 0.5)
        >>> m, v = torch.zeros(3), torch.zeros(3)
        >>> radam_update(w, g, m, v, step=1.0, lr=0.1)
        >>> w  # ρ_1 ≤ 5: an un-adapted momentum step, lr·m̂ = 0.1·0.5
        tensor([0.9500, 0.9500, 0.9500])

    References:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020,
        arXiv:1908.03265.

    Notes:
        As torch: the rectified step multiplies in the order
        :math:`(\hat m_t \cdot \gamma) \cdot \text{adaptive} \cdot r_t` and adds :math:`\epsilon`
        to :math:`\sqrt{v_t}` before dividing :math:`\sqrt{1-\beta_2^t}` by it; the paper's
        Algorithm 2 has no :math:`\epsilon`. The threshold is :math:`\rho_t > 5` (the
        authors' code), not the paper's :math:`\rho_t > 4`. The compiled (``fused``) form
        picks the branch with ``torch.where`` and multiplies :math:`\gamma` last, as torch's
        capturable path does, so it matches within rounding, not bit for bit.
    """
    beta1, beta2 = betas
    if maximize:
        grad = -grad
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        param, grad, exp_avg, exp_avg_sq = map(
            torch.view_as_real, (param, grad, exp_avg, exp_avg_sq)
        )
    m, v = exp_avg, exp_avg_sq
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # w ← (1 - γλ)·w
        else:
            grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    m.lerp_(grad, 1 - beta1)  # m_t = β1·m + (1-β1)·g
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t = β2·v + (1-β2)·g²
    bias_correction1 = 1 - beta1**step  # 1 - β1^t
    bias_correction2 = 1 - beta2**step  # 1 - β2^t
    m_hat = m / bias_correction1
    rho_inf = 2 / (1 - beta2) - 1  # ρ_∞
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2  # ρ_t
    rect_sq = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)

    def adaptive_lr() -> Tensor:  # √(1-β2^t) / (√v_t + ε)
        return (bias_correction2**0.5) / v.sqrt().add_(eps)

    if isinstance(step, Tensor):  # compiled: no data-dependent branch (|·| keeps r_t real
        rect = abs(rect_sq) ** 0.5  # where it is not used, ρ_t ≤ 5)
        update = torch.where(rho_t > 5.0, rect * adaptive_lr(), 1.0)
        param.add_(m_hat * lr * update, alpha=-1.0)
    elif rho_t > 5.0:
        rect = rect_sq**0.5  # r_t
        param.add_(m_hat * lr * adaptive_lr() * rect, alpha=-1.0)  # w -= γ·m̂·adaptive·r_t
    else:
        param.add_(m_hat * lr, alpha=-1.0)  # w -= γ·m̂ (SGD with momentum)


class RAdam(RuleOptimizer):
    """RAdam (``decoupled_weight_decay=True``: RAdamW); drop-in for ``torch.optim.RAdam``.

    The update is :func:`radam_update`. State per parameter: ``step``, ``exp_avg``,
    ``exp_avg_sq`` — torch's names, so state_dicts move between the two. ``foreach`` is
    accepted and runs the same rule; ``fused=True`` (which torch's RAdam lacks) runs the
    compiled form of the rule; ``capturable`` and ``differentiable`` raise
    ``NotImplementedError``.
    """

    rule = staticmethod(radam_update)
    state_keys = ("exp_avg", "exp_avg_sq")
    hyperparams = ("lr", "betas", "eps", "weight_decay", "maximize", "decoupled_weight_decay")

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check_adam_family(lr, eps, betas, weight_decay)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

"""SGD with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._base import RuleOptimizer, check, check_tensor_lr

__all__ = ["SGD", "sgd_update"]


def sgd_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor | None = None,
    *,
    step: float = 0.0,
    lr: float | Tensor = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float | Tensor = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> Tensor | None:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay.

    In the seed notebook's notation — learning rate :math:`\gamma`, momentum :math:`\mu`,
    dampening :math:`\tau`, weight decay :math:`\lambda`, buffer :math:`\Delta g`:

    .. math::
        g_t &= \nabla L(w_t) + \lambda w_t \\
        \Delta g_t &= \mu \Delta g_{t-1} + (1 - \tau) g_t
            \qquad (\Delta g_1 = g_1) \\
        w_{t+1} &= w_t - \gamma \Delta g_t
            \qquad\text{or, Nesterov,}\qquad w_{t+1} = w_t - \gamma (g_t + \mu \Delta g_t)

    Updates ``param`` and ``momentum_buffer`` in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (dense or sparse, real or complex).
        momentum_buffer: :math:`\Delta g_{t-1}`, or ``None`` before the first momentum step.
        step: unused (SGD keeps no step count); accepted so every rule has one signature.
        lr: :math:`\gamma`, float or 0-dim tensor (default 1e-3).
        momentum: :math:`\mu` (default 0: plain SGD, no buffer).
        dampening: :math:`\tau` (default 0).
        weight_decay: :math:`\lambda`, L2 penalty added to the gradient (default 0).
        nesterov: use Nesterov momentum (default False; needs momentum > 0, dampening 0).
        maximize: ascend instead of descend (default False).

    Returns:
        The momentum buffer when this call created it (first step with ``momentum > 0``),
        for the caller to store in its state; otherwise ``None``.

    Example:
        >>> import torch
        >>> w, g = torch.ones(2), torch.tensor([0.5, -1.0])
        >>> buf = sgd_update(w, g, None, lr=0.1, momentum=0.9)
        >>> w, buf
        (tensor([0.9500, 1.1000]), tensor([ 0.5000, -1.0000]))

    References:
        Robbins & Monro, "A Stochastic Approximation Method", 1951.
        Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum
        in deep learning", ICML 2013 (Nesterov momentum in this form).

    Notes:
        As in torch, the first momentum step sets :math:`\Delta g_1 = g_1` without dampening
        (the buffer is a copy of the gradient), and the learning rate multiplies the whole
        buffer rather than entering it (Sutskever et al. put :math:`\gamma` inside
        :math:`\Delta g`); the two agree for a constant :math:`\gamma`. Nesterov is the
        reformulation :math:`g_t + \mu \Delta g_t`, not a look-ahead gradient evaluation.
    """
    created = None
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # type: ignore[arg-type]  # g ← g + λ·w
    if momentum != 0:
        buf = momentum_buffer
        if buf is None:
            buf = created = grad.detach().clone()  # Δg_1 = g_1 (no dampening)
        else:
            buf.mul_(momentum).add_(grad, alpha=1 - dampening)  # Δg_t = μ·Δg + (1-τ)·g
        if nesterov:
            grad = grad.add(buf, alpha=momentum)  # g + μ·Δg_t
        else:
            grad = buf
    param.add_(grad, alpha=-lr)  # type: ignore[arg-type]  # w -= γ·update
    return created


class SGD(RuleOptimizer):
    """SGD; drop-in for ``torch.optim.SGD``. The update is :func:`sgd_update`.

    State per parameter: ``momentum_buffer``, created on the first step when ``momentum > 0``
    (no state at all otherwise), as in torch. ``foreach`` is accepted and runs the same rule;
    ``fused=True`` runs the compiled form of the rule; ``differentiable`` raises
    ``NotImplementedError``. Sparse gradients are accepted, as in torch.
    """

    rule = staticmethod(sgd_update)
    state_keys = ("momentum_buffer",)
    hyperparams = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    sparse_ok = True

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check(not lr < 0.0, "learning rate", lr)
        check(not momentum < 0.0, "momentum value", momentum)
        check(not weight_decay < 0.0, "weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        # Nothing up front: the momentum buffer is made by the rule on the first step, and a
        # momentum-free SGD keeps no state entry at all (torch's state_dict has none either).
        return {}

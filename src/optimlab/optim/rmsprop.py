"""RMSprop: steps scaled by a moving root mean square of the gradient."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import RuleOptimizer, check, check_tensor_lr, step_counter, zeros_state

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    momentum_buffer: Tensor | None = None,
    grad_avg: Tensor | None = None,
    *,
    step: float = 0.0,
    lr: float | Tensor = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    maximize: bool = False,
) -> None:
    r"""RMSprop: divide the gradient by a moving root mean square of recent gradients.

    In the seed notebook's notation (:math:`\beta` is torch's ``alpha``), with learning rate
    :math:`\gamma`, weight decay :math:`\lambda`, momentum :math:`\mu`:

    .. math::
        g_t &= \nabla L(w_t) + \lambda w_t \\
        v_t &= \beta v_{t-1} + (1 - \beta) g_t^2 \\
        \bar g_t &= \beta \bar g_{t-1} + (1 - \beta) g_t
            \qquad d_t = \sqrt{v_t - \bar g_t^2} + \epsilon \quad\text{(centered)} \\
        d_t &= \sqrt{v_t} + \epsilon \quad\text{(otherwise)} \\
        b_t &= \mu b_{t-1} + g_t / d_t, \quad w_{t+1} = w_t - \gamma b_t
            \qquad\text{or, without momentum,}\qquad w_{t+1} = w_t - \gamma g_t / d_t

    Updates ``param``, ``square_avg`` (:math:`v`) and, when given, ``momentum_buffer``
    (:math:`b`) and ``grad_avg`` (:math:`\bar g`) in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (real or complex).
        square_avg: :math:`v`, the moving average of squared gradients.
        momentum_buffer: :math:`b`; required when ``momentum > 0`` (default ``None``).
        grad_avg: :math:`\bar g`; pass it to use the centered variant (default ``None``).
        step: unused by the math; torch counts steps in the state all the same.
        lr: :math:`\gamma`, float or 0-dim tensor (default 1e-2).
        alpha: :math:`\beta`, the smoothing constant (default 0.99).
        eps: :math:`\epsilon`, added to the root (default 1e-8).
        weight_decay: :math:`\lambda` (default 0).
        momentum: :math:`\mu` (default 0).
        maximize: ascend instead of descend (default False).

    Example:
        >>> import torch
        >>> w, g, v = torch.ones(2), torch.tensor([1.0, -1.0]), torch.zeros(2)
        >>> rmsprop_update(w, g, v, lr=0.01, alpha=0.99)
        >>> w  # the first step is γ/√(1-β) = 0.1 per coordinate
        tensor([0.9000, 1.1000])

    References:
        Hinton, Srivastava & Swersky, "Neural Networks for Machine Learning", lecture 6e, 2012
        (no paper). Graves, "Generating Sequences With Recurrent Neural Networks", 2013,
        arXiv:1308.0850 (the centered variant).

    Notes:
        As torch: :math:`\epsilon` is added after the square root; the moving averages start at
        zero with no bias correction (so early steps are large); momentum accumulates the
        normalised gradient :math:`g/d` and the learning rate is applied to the buffer.
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    v, b, g_avg = square_avg, momentum_buffer, grad_avg
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        param, grad, v = map(torch.view_as_real, (param, grad, v))
    v.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)  # v_t = β·v + (1-β)·g²
    if g_avg is not None:
        if torch.is_complex(g_avg):
            g_avg = torch.view_as_real(g_avg)
        g_avg.lerp_(grad, 1 - alpha)  # ḡ_t = β·ḡ + (1-β)·g
        avg = v.addcmul(g_avg, g_avg, value=-1).sqrt_()  # √(v_t - ḡ_t²)
    else:
        avg = v.sqrt()  # √v_t
    avg = avg.add_(eps)  # d_t = … + ε
    if momentum > 0:
        assert b is not None, "momentum > 0 needs a momentum_buffer"
        if torch.is_complex(b):
            b = torch.view_as_real(b)
        b.mul_(momentum).addcdiv_(grad, avg)  # b_t = μ·b + g/d_t
        param.add_(b, alpha=-lr)  # type: ignore[arg-type]  # w -= γ·b_t
    else:
        param.addcdiv_(grad, avg, value=-lr)  # type: ignore[arg-type]  # w -= γ·g/d_t
    return None


class RMSprop(RuleOptimizer):
    """RMSprop; drop-in for ``torch.optim.RMSprop``. The update is :func:`rmsprop_update`.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (when momentum > 0)
    and ``grad_avg`` (when centered), torch's names. Adds a keyword-only ``fused`` (torch has
    none): ``fused=True`` runs the compiled form of the rule. ``foreach`` is accepted and runs
    the same rule; ``capturable`` and ``differentiable`` raise ``NotImplementedError``.
    """

    rule = staticmethod(rmsprop_update)
    state_keys = ("square_avg", "momentum_buffer", "grad_avg")
    hyperparams = ("lr", "alpha", "eps", "weight_decay", "momentum", "maximize")

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check(0.0 <= lr, "learning rate", lr)
        check(0.0 <= eps, "epsilon value", eps)
        check(0.0 <= momentum, "momentum value", momentum)
        check(0.0 <= weight_decay, "weight_decay value", weight_decay)
        check(0.0 <= alpha, "alpha value", alpha)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        state["step"] = step_counter(p, group)
        state["square_avg"] = zeros_state(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_state(p)
        if group["centered"]:
            state["grad_avg"] = zeros_state(p)
        return state

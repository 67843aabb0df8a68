"""NAdam: Adam with Nesterov momentum and a warming momentum schedule (and NAdamW)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import (
    RuleOptimizer,
    check,
    check_adam_family,
    check_tensor_lr,
    scalar_dtype,
    step_counter,
    zeros_state,
)

__all__ = ["NAdam", "nadam_update"]


def nadam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    mu_product: Tensor,
    *,
    step: float,
    lr: float | Tensor = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None:
    r"""NAdam: Adam whose first moment looks one step ahead, Nesterov style.

    With :math:`g_t` the gradient (negated when maximizing), step size :math:`\gamma`,
    :math:`\beta_1, \beta_2`, momentum decay :math:`\psi` and weight decay :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda w_{t-1}          \quad\text{(NAdam)} \qquad
        w_{t-1} \leftarrow (1 - \gamma\lambda) w_{t-1} \quad\text{(NAdamW)} \\
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \Pi_t = \prod_{i=1}^{t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        w_t &= w_{t-1} - \gamma \left(
            \frac{1 - \mu_t}{1 - \Pi_t} g_t + \frac{\mu_{t+1}}{1 - \Pi_{t+1}} m_t \right)
            \Big/ \left(\sqrt{v_t / (1 - \beta_2^t)} + \epsilon\right)

    Updates ``param``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and ``mu_product``
    (:math:`\Pi`) in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (real or complex, same shape).
        exp_avg, exp_avg_sq: first and second moment buffers, zeros at the start.
        mu_product: :math:`\Pi_{t-1}`, a 0-dim tensor, 1 at the start.
        step: the step count :math:`t` after incrementing it (1 on the first step).
        lr: :math:`\gamma`, float or 0-dim tensor (default 2e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon`, added to the denominator (default 1e-8).
        weight_decay: :math:`\lambda` (default 0).
        momentum_decay: :math:`\psi` (default 4e-3).
        maximize: ascend instead of descend (default False).
        decoupled_weight_decay: shrink the weights directly (NAdamW) instead of adding
            :math:`\lambda w` to the gradient (default False).

    Example:
        >>> import torch
        >>> w, g = torch.ones(3), torch.full((3,), 0.5)
        >>> m, v, pi = torch.zeros(3), torch.zeros(3), torch.tensor(1.0)
        >>> nadam_update(w, g, m, v, pi, step=1.0, lr=0.1)
        >>> w  # about lr on the first step (a little more: the look-ahead momentum)
        tensor([0.8944, 0.8944, 0.8944])

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop,
        https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ.
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2017, arXiv:1711.05101.

    Notes:
        As torch: :math:`\Pi` is a running product kept in a 0-dim tensor of the default
        scalar dtype (float32 unless the default dtype is float64), so it is rounded at
        every step, and :math:`\Pi_{t+1}` is that value times :math:`\mu_{t+1}` in Python
        floats. :math:`v_t` is bias-corrected before the root and :math:`\epsilon` added after
        it. The paper corrects :math:`g_t` by :math:`1 - \Pi_t` and :math:`m_t` by
        :math:`1 - \Pi_{t+1}`, as here; Keras' original NAdam differs in the same places.
    """
    beta1, beta2 = betas
    if maximize:
        grad = -grad
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        param, grad, exp_avg, exp_avg_sq = map(
            torch.view_as_real, (param, grad, exp_avg, exp_avg_sq)
        )
    m, v = exp_avg, exp_avg_sq
    bias_correction2 = 1 - beta2**step  # 1 - β2^t
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # w ← (1 - γλ)·w
        else:
            grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))  # μ_t
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))  # μ_{t+1}
    mu_product *= mu  # Π_t = Π_{t-1}·μ_t, rounded to the counter's dtype as in torch
    m.lerp_(grad, 1 - beta1)  # m_t = β1·m + (1-β1)·g
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t = β2·v + (1-β2)·g²
    denom = v.div(bias_correction2).sqrt()  # √(v_t/(1-β2^t))
    pi = mu_product.item() if not torch.compiler.is_compiling() else mu_product
    pi_next = pi * mu_next  # Π_{t+1}
    denom.add_(eps)
    param.addcdiv_(grad, denom, value=(-lr * (1.0 - mu) / (1.0 - pi)))  # type: ignore[arg-type]
    param.addcdiv_(m, denom, value=(-lr * mu_next) / (1.0 - pi_next))  # type: ignore[arg-type]


class NAdam(RuleOptimizer):
    """NAdam (``decoupled_weight_decay=True``: NAdamW); drop-in for ``torch.optim.NAdam``.

    The update is :func:`nadam_update`. State per parameter: ``step``, ``mu_product``,
    ``exp_avg``, ``exp_avg_sq`` — torch's names and dtypes, so state_dicts move between the
    two. As torch's, ``load_state_dict`` casts ``mu_product`` to the parameter's dtype: a
    float64 run then continues in float64 products instead of float32 ones, so (like
    torch.optim.NAdam) it does not resume bit-identically; float32 runs do. ``foreach`` is
    accepted and runs the same rule; ``fused=True`` (which torch's NAdam lacks) runs the
    compiled form of the rule; ``capturable`` and ``differentiable`` raise
    ``NotImplementedError``.
    """

    rule = staticmethod(nadam_update)
    state_keys = ("exp_avg", "exp_avg_sq", "mu_product")
    hyperparams = (
        "lr", "betas", "eps", "weight_decay", "momentum_decay", "maximize",
        "decoupled_weight_decay",
    )

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
        check(0.0 <= momentum_decay, "momentum_decay value", momentum_decay)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # old checkpoints stored mu_product as a number
            for p in group["params"]:
                p_state = self.state.get(p)
                if p_state and not torch.is_tensor(p_state.get("mu_product", 0.0)):
                    value = float(p_state["mu_product"])
                    p_state["mu_product"] = torch.tensor(value, dtype=scalar_dtype())

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        state["step"] = step_counter(p, group)
        state["mu_product"] = torch.ones((), dtype=state["step"].dtype, device=state["step"].device)
        state["exp_avg"] = zeros_state(p)
        state["exp_avg_sq"] = zeros_state(p)
        return state

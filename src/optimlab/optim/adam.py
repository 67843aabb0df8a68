"""Adam and AdamW: one update rule, coupled or decoupled weight decay."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import (
    RuleOptimizer,
    check_adam_family,
    check_tensor_lr,
    step_counter,
    to_scalar,
    zeros_state,
)

__all__ = ["Adam", "AdamW", "adam_update"]


def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None = None,
    *,
    step: float,
    lr: float | Tensor = 1e-3,
    betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None:
    r"""Adam: a bias-corrected moving average of the gradient over the root of its square's.

    With :math:`g_t` the gradient (negated when maximizing), step size :math:`\gamma`,
    :math:`\beta_1, \beta_2` (the seed notebook's :math:`\mu, \beta`) and decay :math:`\lambda`:

    .. math::
        g_t &\leftarrow g_t + \lambda w_{t-1}                 \quad\text{(Adam)} \qquad
        w_{t-1} \leftarrow (1 - \gamma\lambda) w_{t-1}        \quad\text{(AdamW)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \qquad
        (\text{amsgrad: } v^{max}_t = \max(v^{max}_{t-1}, v_t) \text{ replaces } v_t
        \text{ below}) \\
        w_t &= w_{t-1} - \frac{\gamma}{1 - \beta_1^t} \,
               \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Updates ``param``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and, when given,
    ``max_exp_avg_sq`` (:math:`v^{max}`, AMSGrad) in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (real or complex, same shape).
        exp_avg, exp_avg_sq: first and second moment buffers, zeros at the start.
        max_exp_avg_sq: running maximum of ``exp_avg_sq``; pass it to enable AMSGrad
            (default ``None``: plain Adam).
        step: the step count :math:`t` after incrementing it (1 on the first step).
        lr: :math:`\gamma`, float or 0-dim tensor (default 1e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon`, added to the denominator (default 1e-8).
        weight_decay: :math:`\lambda` (default 0; AdamW's class default is 1e-2).
        maximize: ascend instead of descend (default False).
        decoupled_weight_decay: shrink the weights directly (AdamW) instead of adding
            :math:`\lambda w` to the gradient (default False).

    Example:
        >>> import torch
        >>> w, g = torch.ones(3), torch.full((3,), 0.5)
        >>> m, v = torch.zeros(3), torch.zeros(3)
        >>> adam_update(w, g, m, v, step=1.0, lr=0.1)
        >>> w  # the first Adam step moves every weight by about lr
        tensor([0.9000, 0.9000, 0.9000])

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2014, arXiv:1412.6980.
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2017, arXiv:1711.05101.
        Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond" (AMSGrad), 2018,
        arXiv:1904.09237.

    Notes:
        :math:`\epsilon` is added after the bias-corrected root, as in Algorithm 1 of the paper
        and in torch, and that root is taken as :math:`\sqrt{v_t} / \sqrt{1-\beta_2^t}` (root
        first, then a division by a Python float) rather than :math:`\sqrt{v_t/(1-\beta_2^t)}`;
        the paper's "more efficient" form (end of its Section 2) folds both corrections into
        the step size and adds :math:`\epsilon` to :math:`\sqrt{v_t}`, which is a different
        :math:`\epsilon`. AdamW's decay is scaled by the learning rate, :math:`1 - \gamma\lambda`,
        as in torch, whereas the paper scales it by the schedule multiplier only. AMSGrad keeps
        the maximum of the raw :math:`v_t` (torch's choice) and then bias-corrects it.
    """
    beta1, beta2 = betas
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # w ← (1 - γλ)·w
        else:
            grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        grad, exp_avg, exp_avg_sq = map(torch.view_as_real, (grad, exp_avg, exp_avg_sq))
        if max_exp_avg_sq is not None:
            max_exp_avg_sq = torch.view_as_real(max_exp_avg_sq)
        param = torch.view_as_real(param)
    m, v, v_max = exp_avg, exp_avg_sq, max_exp_avg_sq
    beta1_here = beta1  # a tensor β1 is moved to the parameter's device and dtype for lerp
    if isinstance(beta1, Tensor):
        beta1_here = beta1.to(device=param.device, dtype=param.dtype, non_blocking=True)

    m.lerp_(grad, 1 - beta1_here)  # m_t = β1·m + (1-β1)·g
    # v_t = β2·v + (1-β2)·g²   (ignore: torch's stubs admit only numbers, tensors work)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # type: ignore[arg-type]

    bias_correction1 = 1 - beta1**step  # 1 - β1^t
    bias_correction2 = 1 - beta2**step  # 1 - β2^t
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if v_max is not None:
        torch.maximum(v_max, v, out=v_max)  # v^max_t = max(v^max, v_t)
        v = v_max
    denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)  # √v_t/√(1-β2^t) + ε
    # w -= γ/(1-β1^t) · m_t / denom
    param.addcdiv_(m, denom, value=-step_size)  # type: ignore[arg-type]
    return None


def _check_beta_types(betas: tuple[Any, Any], foreach: bool | None, capturable: bool) -> None:
    """torch's checks on the type of ``betas``: both floats or both 1-element tensors."""
    if not (
        (isinstance(betas[0], float) and isinstance(betas[1], float))
        or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
    ):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, beta in enumerate(betas):
        if isinstance(beta, Tensor):
            if not capturable and foreach:
                raise ValueError(
                    f"betas[{i}] as a Tensor is not supported for capturable=False and "
                    "foreach=True"
                )
            if beta.numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element")


class Adam(RuleOptimizer):
    """Adam (``decoupled_weight_decay=True``: AdamW); drop-in for ``torch.optim.Adam``.

    The update is :func:`adam_update`. State per parameter: ``step``, ``exp_avg``,
    ``exp_avg_sq`` and, with ``amsgrad=True``, ``max_exp_avg_sq`` — torch's names, so
    state_dicts move between the two. ``foreach`` is accepted and runs the same rule;
    ``fused=True`` runs the compiled form of the rule; ``capturable`` and ``differentiable``
    raise ``NotImplementedError``.
    """

    rule = staticmethod(adam_update)
    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    hyperparams = ("lr", "betas", "eps", "weight_decay", "maximize", "decoupled_weight_decay")
    sparse_hint = ", please consider SparseAdam instead"

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if isinstance(lr, Tensor):
            if foreach and not capturable:
                raise ValueError(
                    "lr as a Tensor is not supported for capturable=False and foreach=True"
                )
            check_tensor_lr(lr)
        check_adam_family(lr, eps, betas, weight_decay)
        _check_beta_types(betas, foreach, capturable)
        defaults = {
            "lr": lr,
            "betas": (to_scalar(betas[0]), to_scalar(betas[1])),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        state["step"] = step_counter(p, group)
        state["exp_avg"] = zeros_state(p)
        state["exp_avg_sq"] = zeros_state(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_state(p)
        return state


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay; drop-in for ``torch.optim.AdamW``."""

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        # As torch: whatever was saved, AdamW's weight decay is decoupled.
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True

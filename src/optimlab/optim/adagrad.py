"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import RuleOptimizer, check, check_tensor_lr, step_counter

__all__ = ["Adagrad", "adagrad_update"]


def _sparse_like(grad: Tensor, indices: Tensor, values: Tensor) -> Tensor:
    """A sparse tensor of ``grad``'s size; indices come from ``grad`` itself, so they are valid
    (no invariant checks, as in torch's Adagrad, said explicitly to keep torch from warning)."""
    return torch.sparse_coo_tensor(indices, values, grad.size(), check_invariants=False)


def adagrad_update(
    param: Tensor,
    grad: Tensor,
    state_sum: Tensor,
    *,
    step: float,
    lr: float | Tensor = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    r"""Adagrad: divide each coordinate's step by the root of its accumulated squared gradients.

    With learning rate :math:`\gamma`, decay :math:`\eta` (``lr_decay``), weight decay
    :math:`\lambda` and accumulator :math:`v` (``sum``, starting at
    ``initial_accumulator_value``):

    .. math::
        g_t &= \nabla L(w_t) + \lambda w_t \\
        \tilde\gamma_t &= \gamma / (1 + (t - 1)\,\eta) \\
        v_t &= v_{t-1} + g_t^2 \\
        w_{t+1} &= w_t - \tilde\gamma_t \, g_t / (\sqrt{v_t} + \epsilon)

    Updates ``param`` and ``state_sum`` in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter and its gradient (dense, sparse or complex).
        state_sum: :math:`v`, the running sum of squared gradients.
        step: the step count :math:`t` after incrementing it (1 on the first step).
        lr: :math:`\gamma`, float or 0-dim tensor (default 1e-2).
        lr_decay: :math:`\eta` (default 0).
        weight_decay: :math:`\lambda` (default 0; not allowed with sparse gradients).
        eps: :math:`\epsilon`, added to the root (default 1e-10).
        maximize: ascend instead of descend (default False).

    Example:
        >>> import torch
        >>> w, g, v = torch.ones(2), torch.tensor([2.0, -0.5]), torch.zeros(2)
        >>> adagrad_update(w, g, v, step=1.0, lr=0.1)
        >>> w  # the first step is ±lr in every coordinate
        tensor([0.9000, 1.1000])

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, 2011.

    Notes:
        The paper has no ``lr_decay``; torch (and we) divide :math:`\gamma` by
        :math:`1 + (t-1)\eta`. :math:`\epsilon` is added after the square root. For sparse
        gradients only the touched coordinates of :math:`v` and :math:`w` change. torch
        initialises the accumulator of parameters added later with the constructor's
        ``initial_accumulator_value``, whatever the group says; so do we.
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if grad.is_sparse:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        grad = grad.add(param, alpha=weight_decay)  # g ← g + λ·w
    clr = lr / (1 + (step - 1) * lr_decay)  # γ̃_t = γ / (1 + (t-1)·η)
    if grad.is_sparse:
        grad = grad.coalesce()  # the update is non-linear, so indices must be unique
        indices, values = grad._indices(), grad._values()
        state_sum.add_(_sparse_like(grad, indices, values.pow(2)))  # v_t = v + g² (touched)
        std = state_sum.sparse_mask(grad)._values().sqrt_().add_(eps)  # √v_t + ε
        param.add_(_sparse_like(grad, indices, values / std), alpha=-clr)  # type: ignore[arg-type]
        return None
    v = state_sum
    if torch.is_complex(param):  # complex numbers are updated as pairs of reals
        grad, v, param = map(torch.view_as_real, (grad, v, param))
    v.addcmul_(grad, grad, value=1)  # v_t = v + g²
    std = v.sqrt().add_(eps)  # √v_t + ε
    # w -= γ̃_t · g / (√v_t + ε)   (ignore: torch's stubs admit only numbers, tensors work)
    param.addcdiv_(grad, std, value=-clr)  # type: ignore[arg-type]
    return None


class Adagrad(RuleOptimizer):
    """Adagrad; drop-in for ``torch.optim.Adagrad``. The update is :func:`adagrad_update`.

    State per parameter: ``step`` and ``sum``, created for every parameter at construction as
    torch does. ``foreach`` is accepted and runs the same rule; ``fused=True`` runs the
    compiled form of the rule; ``differentiable`` raises ``NotImplementedError``. Sparse
    gradients are accepted (without weight decay), as in torch.
    """

    rule = staticmethod(adagrad_update)
    state_keys = ("sum",)
    hyperparams = ("lr", "lr_decay", "weight_decay", "eps", "maximize")
    sparse_ok = True

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check(0.0 <= lr, "learning rate", lr)
        check(0.0 <= lr_decay, "lr_decay value", lr_decay)
        check(0.0 <= weight_decay, "weight_decay value", weight_decay)
        check(
            0.0 <= initial_accumulator_value,
            "initial_accumulator_value value",
            initial_accumulator_value,
        )
        check(0.0 <= eps, "epsilon value", eps)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:  # torch creates Adagrad's state eagerly
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        state["step"] = step_counter(p, group)
        value = self.defaults["initial_accumulator_value"]
        fill = complex(value, value) if torch.is_complex(p) else value
        state["sum"] = torch.full_like(p, fill, memory_format=torch.preserve_format)
        return state

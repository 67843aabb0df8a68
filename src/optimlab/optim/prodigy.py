"""Prodigy: Adam whose step size D is estimated on the fly from the distance travelled."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._base import check

__all__ = ["Prodigy", "prodigy_accumulate", "prodigy_d_estimate", "prodigy_update"]


def prodigy_accumulate(
    param: Tensor,
    grad: Tensor,
    p0: Tensor,
    s: Tensor,
    exp_avg: Tensor | None,
    exp_avg_sq: Tensor,
    *,
    d: float,
    d0: float,
    dlr: float,
    betas: tuple[float, float],
    beta3: float,
    slice_p: int,
    safeguard_warmup: bool,
) -> tuple[float, float]:
    r"""Prodigy's first pass over one parameter: the moments and its share of the D estimate.

    With :math:`g` the gradient (plus :math:`\lambda w` unless decay is decoupled),
    :math:`w_0` the initial weights and :math:`\eta_t = d_t\gamma_t` (``dlr``):

    .. math::
        m &\leftarrow \beta_1 m + d_t (1 - \beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + d_t^2 (1 - \beta_2)\, g^2 \\
        s &\leftarrow \beta_3 s + \tfrac{d_t}{d_0} \eta_t\, g
            \quad(\text{safeguard warmup: } \tfrac{d_t}{d_0} d_t\, g)

    ``s`` and ``p0`` hold every ``slice_p``-th element of the flattened parameter. Returns
    :math:`(\tfrac{d_t}{d_0}\eta_t \langle g, w_0 - w\rangle,\ \lVert s \rVert_1)` as Python
    floats, the parameter's terms of the numerator and denominator of :math:`\hat d`.
    """
    beta1, beta2 = betas
    sliced_grad = grad.flatten()[::slice_p]
    numerator = (d / d0) * dlr * torch.dot(sliced_grad, p0 - param.flatten()[::slice_p]).item()
    if exp_avg is not None:
        exp_avg.mul_(beta1).add_(grad, alpha=d * (1 - beta1))  # m ← β1·m + d(1-β1)·g
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=d * d * (1 - beta2))  # v ← β2·v + d²(1-β2)g²
    alpha = (d / d0) * d if safeguard_warmup else (d / d0) * dlr
    s.mul_(beta3).add_(sliced_grad, alpha=alpha)  # s ← β3·s + (d/d0)·η·g
    return numerator, s.abs().sum().item()


def prodigy_d_estimate(
    d: float,
    d0: float,
    d_max: float,
    numerator: float,
    denominator: float,
    d_coef: float,
    growth_rate: float,
) -> tuple[float, float, float]:
    r""":math:`\hat d = c\, r_t / \lVert s_t \rVert_1`, then :math:`d_{t+1}`; returns
    :math:`(d_{t+1}, d_{max}, \hat d)`.

    :math:`d` only grows: :math:`d_{max} = \max(d_{max}, \hat d)`,
    :math:`d_{t+1} = \min(d_{max}, d_t \cdot \text{growth\_rate})`; on the first estimate
    (:math:`d_t = d_0`) :math:`d` first becomes :math:`\max(d_0, \hat d)`, as the reference.
    """
    d_hat = d_coef * numerator / denominator
    if d == d0:
        d = max(d, d_hat)
    d_max = max(d_max, d_hat)
    return min(d_max, d * growth_rate), d_max, d_hat


def prodigy_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor | None,
    exp_avg_sq: Tensor,
    *,
    d: float,
    dlr: float,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decouple: bool = True,
) -> None:
    r"""Prodigy: Adam with its scale :math:`d` learnt from how far the weights have moved.

    Per step :math:`t`, with step size :math:`\gamma_t`, :math:`\beta_1, \beta_2`,
    :math:`\beta_3 = \sqrt{\beta_2}` by default, :math:`w_0` the initial weights and
    :math:`\eta_t = d_t \gamma_t` (times Adam's bias correction if enabled):

    .. math::
        m_t &= \beta_1 m_{t-1} + d_t(1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + d_t^2 (1 - \beta_2)\, g_t^2 \\
        r_t &= \beta_3 r_{t-1} + \tfrac{d_t}{d_0}\eta_t \langle g_t, w_0 - w_t \rangle, \qquad
        s_t = \beta_3 s_{t-1} + \tfrac{d_t}{d_0}\eta_t\, g_t \\
        \hat d_t &= r_t / \lVert s_t \rVert_1, \qquad
        d_{t+1} = \min(\max(d_t, \hat d_t) \text{ so far},\ d_t \cdot \text{growth\_rate}) \\
        w_{t+1} &= w_t - \eta_t \lambda w_t - \eta_t\, m_t / (\sqrt{v_t} + d_{t+1}\epsilon)

    This function is the last line (``d`` is :math:`d_{t+1}`, ``dlr`` is :math:`\eta_t`);
    :func:`prodigy_accumulate` and :func:`prodigy_d_estimate` compute the rest. With
    :math:`\beta_1 = 0` there is no :math:`m` and the step is
    :math:`\eta_t d_{t+1}\, g_t / (\sqrt{v_t} + d_{t+1}\epsilon)`.

    Args:
        param, grad: the parameter and its gradient (with :math:`\lambda w` added when the
            decay is not decoupled).
        exp_avg, exp_avg_sq: :math:`m` (``None`` when :math:`\beta_1 = 0`) and :math:`v`.
        d: :math:`d_{t+1}`, the new estimate (starts at ``d0`` = 1e-6).
        dlr: :math:`\eta_t = d_t \gamma_t` (:math:`\gamma` defaults to 1.0: leave it so).
        eps: :math:`\epsilon`, scaled by :math:`d` (default 1e-8).
        weight_decay: :math:`\lambda` (default 0).
        decouple: AdamW-style decay (default True).

    Example:
        >>> import torch
        >>> w, m, v = torch.ones(2), torch.full((2,), 0.1), torch.full((2,), 0.01)
        >>> prodigy_update(w, torch.zeros(2), m, v, d=1.0, dlr=0.5)
        >>> w  # w - η·m/(√v + dε)
        tensor([0.5000, 0.5000])

    References:
        Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
        ICML 2024, arXiv:2306.06101 (Algorithm 4, Adam form). Reference code:
        konstmish/prodigy, ``prodigyopt`` 1.1.2.

    Notes:
        As the reference: :math:`m` and :math:`v` carry the :math:`d` factors inside them
        (the paper's Algorithm 4 writes the same); bias correction is off by default;
        :math:`\epsilon` is scaled by :math:`d`; the decoupled decay uses the step's
        :math:`\eta_t` (the old :math:`d`) while the denominator uses the new :math:`d`.
        All param groups share one :math:`d` and must share one lr or have lr 0; a group
        at lr 0 adds nothing to the estimate but is still stepped with the global
        :math:`\eta_t` (harmless with :math:`m = 0`; with :math:`\beta_1 = 0` its
        :math:`v` stays 0 and the step divides by :math:`d\epsilon`), as the reference.
    """
    if weight_decay != 0 and decouple:
        param.add_(param, alpha=-weight_decay * dlr)  # w ← w - η·λ·w
    denom = exp_avg_sq.sqrt().add_(d * eps)  # √v + d·ε
    if exp_avg is not None:
        param.addcdiv_(exp_avg, denom, value=-dlr)  # w -= η·m/denom
    else:
        param.addcdiv_(grad, denom, value=-dlr * d)  # w -= η·d·g/denom


class Prodigy(Optimizer):
    """Prodigy; drop-in for ``prodigyopt.Prodigy`` (1.1.2), same keywords, group entries
    (``d``, ``d_max``, ``d_numerator``, ``k``, …) and per-parameter state (``step``, ``s``,
    ``p0``, ``exp_avg``, ``exp_avg_sq``), so state_dicts move between the two.

    The update is :func:`prodigy_update` after :func:`prodigy_accumulate` over every
    parameter and one :func:`prodigy_d_estimate`. Unlike the reference, ``p.grad`` is never
    modified (it adds the coupled weight decay into ``p.grad`` in place) and nothing is
    printed; ``fsdp_in_use=True`` raises ``NotImplementedError``.
    """

    #: the update step (its docstring holds the whole algorithm; the class drives the passes)
    rule = staticmethod(prodigy_update)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = float("inf"),
        fsdp_in_use: bool = False,
        slice_p: int = 1,
    ) -> None:
        check(0.0 < d0, "d0 value", d0)
        check(0.0 < lr, "learning rate", lr)
        check(0.0 < eps, "epsilon value", eps)
        check(0.0 <= betas[0] < 1.0, "beta parameter at index 0", betas[0])
        check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
        if fsdp_in_use:
            raise NotImplementedError("optimlab.optim.Prodigy does not implement FSDP sharding")
        defaults = dict(
            lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay,
            d=d0, d0=d0, d_max=d0, d_numerator=0.0, d_coef=d_coef, k=0,
            growth_rate=growth_rate, use_bias_correction=use_bias_correction, decouple=decouple,
            safeguard_warmup=safeguard_warmup, fsdp_in_use=fsdp_in_use, slice_p=slice_p,
        )
        self.d0 = d0
        super().__init__(params, defaults)

    @staticmethod
    def _coupled(p: Tensor, group: dict[str, Any]) -> Tensor:
        """The gradient the rule sees: plus :math:`\\lambda w` when decay is not decoupled."""
        grad = p.grad
        assert grad is not None
        if group["weight_decay"] != 0 and not group["decouple"]:
            return grad.add(p, alpha=group["weight_decay"])
        return grad

    def _init_state(self, p: Tensor, group: dict[str, Any], beta1: float) -> dict[str, Any]:
        state = self.state[p]
        state["step"] = 0
        state["s"] = torch.zeros_like(p.flatten()[:: group["slice_p"]]).detach()
        if p.any():
            state["p0"] = p.flatten()[:: group["slice_p"]].detach().clone()
        else:
            state["p0"] = torch.tensor(0, device=p.device, dtype=p.dtype)
        if beta1 > 0:
            state["exp_avg"] = torch.zeros_like(p).detach()
        state["exp_avg_sq"] = torch.zeros_like(p).detach()
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]  # d and the schedule live in every group; read the first
        beta1, beta2 = first["betas"]
        beta3 = first["beta3"] if first["beta3"] is not None else math.sqrt(beta2)
        k, d, d_max = first["k"], first["d"], first["d_max"]
        lr = max(group["lr"] for group in self.param_groups)
        bias_correction = 1.0
        if first["use_bias_correction"]:
            bias_correction = ((1 - beta2 ** (k + 1)) ** 0.5) / (1 - beta1 ** (k + 1))
        dlr = d * lr * bias_correction  # η_t
        d_numerator = first["d_numerator"] * beta3  # β3·r_{t-1}
        delta_numerator, d_denom = 0.0, 0.0
        for group in self.param_groups:
            if group["lr"] not in [lr, 0.0]:
                raise RuntimeError(
                    "Setting different lr values in different parameter groups is only "
                    "supported for values of 0"
                )
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p] if "step" in self.state[p] else self._init_state(
                    p, group, beta1)
                if group["lr"] > 0.0:
                    numerator, l1 = prodigy_accumulate(
                        p, self._coupled(p, group), state["p0"], state["s"],
                        state.get("exp_avg"), state["exp_avg_sq"], d=d, d0=group["d0"],
                        dlr=dlr, betas=(beta1, beta2), beta3=beta3, slice_p=group["slice_p"],
                        safeguard_warmup=group["safeguard_warmup"],
                    )
                    delta_numerator += numerator
                    d_denom += l1
        d_hat = d
        if d_denom == 0:
            return loss  # no gradient signal at all: no step, as the reference
        d_numerator += delta_numerator
        if lr > 0.0:
            d, d_max, d_hat = prodigy_d_estimate(  # d0 of the last group, as the reference
                d, self.param_groups[-1]["d0"], d_max, d_numerator, d_denom,
                first["d_coef"], first["growth_rate"],
            )
        for group in self.param_groups:
            group.update(d_numerator=d_numerator, d_denom=d_denom, d=d, d_max=d_max, d_hat=d_hat)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                prodigy_update(
                    p, self._coupled(p, group), state.get("exp_avg"), state["exp_avg_sq"],
                    d=d, dlr=dlr, eps=group["eps"], weight_decay=group["weight_decay"],
                    decouple=group["decouple"],
                )
            group["k"] = group["k"] + 1
        return loss

"""Schedule-Free SGD and AdamW: iterate averaging in place of a learning-rate schedule.

Three sequences share one buffer pair. ``z`` takes plain SGD (or Adam-normalised) steps; the
average ``x`` of the ``z``'s is what one evaluates; the gradient is taken at ``y``, an
interpolation of the two. The parameter holds ``y`` while training and ``x`` while evaluating:
call ``optimizer.train()`` before training steps and ``optimizer.eval()`` before validation,
testing or saving a checkpoint, as with the reference package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from ._base import RuleOptimizer, check

__all__ = [
    "AdamWScheduleFree",
    "SGDScheduleFree",
    "adamw_schedulefree_update",
    "sgd_schedulefree_update",
]

_HAS_FOREACH = hasattr(torch, "_foreach_mul_")  # the reference's default for ``foreach``


def sgd_schedulefree_update(
    param: Tensor,
    grad: Tensor,
    z: Tensor,
    *,
    step: float = 0.0,
    lr: float = 1.0,
    ckp1: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> None:
    r"""Schedule-Free SGD: an SGD sequence, its running average, and a point between them.

    The parameter holds :math:`y`. With step size :math:`\gamma_t` (after warmup), momentum
    :math:`\beta`, decay :math:`\lambda` and averaging weight :math:`c_{t+1}` (``ckp1``):

    .. math::
        g_t &= \nabla f(y_t) + \lambda y_t \\
        z_{t+1} &= z_t - \gamma_t g_t \\
        x_{t+1} &= (1 - c_{t+1})\, x_t + c_{t+1} z_{t+1} \\
        y_{t+1} &= (1 - \beta)\, z_{t+1} + \beta\, x_{t+1}

    computed without storing :math:`x`:
    :math:`y \leftarrow y + c_{t+1}(z - y) + \gamma_t(\beta(1 - c_{t+1}) - 1)\, g_t`, then the
    :math:`z` step. Updates ``param`` and ``z`` in place; ``grad`` is never modified.

    Args:
        param, grad: the parameter (:math:`y`) and the gradient taken there.
        z: the SGD sequence, a copy of the parameter at the start.
        step: unused (the step count is the group's ``k``); every rule takes it.
        lr: :math:`\gamma_t`, the warmed-up learning rate (class default 1.0).
        ckp1: :math:`c_{t+1} = w_{t+1} / \sum_{i \le t+1} w_i`, the averaging weight, with
            :math:`w_t = t^r \max_{i \le t} \gamma_i^{p}` (``r``, ``weight_lr_power``).
        momentum: :math:`\beta`, the interpolation between :math:`z` and :math:`x` (0.9).
        weight_decay: :math:`\lambda`, L2 penalty taken at :math:`y` (default 0).

    Example:
        >>> import torch
        >>> y, g = torch.ones(2), torch.tensor([1.0, -1.0])
        >>> z = y.clone()
        >>> sgd_schedulefree_update(y, g, z, lr=0.1, ckp1=1.0)
        >>> z, y  # z took the SGD step; y = 0.9·x + 0.1·z with x = z on the first step
        (tensor([0.9000, 1.1000]), tensor([0.9000, 1.1000]))

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024, arXiv:2405.15682.
        Reference code: facebookresearch/schedule_free, ``schedulefree`` 1.4.1.

    Notes:
        As the reference: warmup is linear over ``warmup_steps`` (the paper uses the
        schedule as given), the averaging weights use the running maximum of the learning
        rate, and the reference adds the weight decay to ``p.grad`` in place (this rule
        leaves the gradient alone and computes the same sum). The parameter holds
        :math:`y`; ``eval()`` moves it to :math:`x` and ``train()`` back, each a ``lerp``,
        so an eval/train round trip changes the parameters by rounding (as the reference).
    """
    g = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad  # g + λ·y
    param.lerp_(z, ckp1)  # y ← y + c·(z - y)
    param.add_(g, alpha=lr * (momentum * (1 - ckp1) - 1))  # y ← y + γ(β(1-c) - 1)·g
    z.sub_(g, alpha=lr)  # z_{t+1} = z_t - γ·g


def adamw_schedulefree_update(
    param: Tensor,
    grad: Tensor,
    z: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: float = 0.0,
    lr: float = 0.0025,
    ckp1: float,
    k: int,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    r"""Schedule-Free AdamW: Schedule-Free SGD on the Adam-normalised gradient.

    As :func:`sgd_schedulefree_update` with :math:`\beta = \beta_1`, on the normalised
    gradient :math:`\hat g_t` (decay added after normalising, decoupled from it):

    .. math::
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \hat g_t &= g_t \big/ \left(\sqrt{v_t / (1 - \beta_2^{t})} + \epsilon\right)
            + \lambda y_t \\
        z_{t+1} &= z_t - \gamma_t \hat g_t, \quad
        x_{t+1} = (1 - c_{t+1})\, x_t + c_{t+1} z_{t+1}, \quad
        y_{t+1} = (1 - \beta_1)\, z_{t+1} + \beta_1 x_{t+1}

    Updates ``param``, ``z`` and ``exp_avg_sq`` (:math:`v`) in place; ``grad`` is never
    modified.

    Args:
        param, grad: the parameter (:math:`y`) and the gradient taken there.
        z: the base sequence, a copy of the parameter at the start.
        exp_avg_sq: :math:`v`, zeros at the start.
        step: unused (the step count is the group's ``k``); every rule takes it.
        lr: :math:`\gamma_t`, the warmed-up learning rate (class default 0.0025).
        ckp1: the averaging weight :math:`c_{t+1}` (see :func:`sgd_schedulefree_update`).
        k: steps taken before this one (:math:`t - 1`).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon` (default 1e-8).
        weight_decay: :math:`\lambda`, applied at :math:`y` (default 0).

    Example:
        >>> import torch
        >>> y, g = torch.ones(2), torch.tensor([1.0, -1.0])
        >>> z, v = y.clone(), torch.zeros(2)
        >>> adamw_schedulefree_update(y, g, z, v, lr=0.1, ckp1=1.0, k=0)
        >>> z  # the first normalised step is ±lr
        tensor([0.9000, 1.1000])

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024, arXiv:2405.15682.
        Reference code: facebookresearch/schedule_free, ``schedulefree`` 1.4.1.

    Notes:
        As the reference: no first moment (the interpolation is the momentum), no bias
        correction of :math:`\beta_1`, :math:`v` bias-corrected before the root and
        :math:`\epsilon` added after it, weight decay at :math:`y` after normalising, and
        the gradient normalised in place in ``p.grad`` (this rule computes the same values
        out of place).
    """
    beta1, beta2 = betas
    v = exp_avg_sq
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t = β2·v + (1-β2)·g²
    denom = v.div(1 - beta2 ** (k + 1)).sqrt_().add_(eps)  # √(v_t/(1-β2^t)) + ε
    g = grad.div(denom)  # ĝ = g / denom
    if weight_decay != 0:
        g.add_(param, alpha=weight_decay)  # ĝ ← ĝ + λ·y
    param.lerp_(z, ckp1)  # y ← y + c·(z - y)
    param.add_(g, alpha=lr * (beta1 * (1 - ckp1) - 1))  # y ← y + γ(β1(1-c) - 1)·ĝ
    z.sub_(g, alpha=lr)  # z_{t+1} = z_t - γ·ĝ


class _ScheduleFree(RuleOptimizer):
    """What both Schedule-Free optimizers share: train()/eval(), the weighted average's
    bookkeeping in each param group (``k``, ``lr_max``, ``weight_sum``, ``scheduled_lr``).

    Its table is Schedule-Free SGD's; AdamW's overrides it."""

    rule: ClassVar[Callable[..., None]] = staticmethod(sgd_schedulefree_update)
    state_keys: ClassVar[tuple[str, ...]] = ("z",)
    hyperparams: ClassVar[tuple[str, ...]] = ("lr", "ckp1", "momentum", "weight_decay")
    #: the averaging weight changes every step: a tensor on the fused path, never a recompile
    tensor_hyperparams: ClassVar[frozenset[str]] = frozenset({"lr", "ckp1"})

    def _interpolation(self, group: dict[str, Any]) -> float:
        """:math:`\beta`, where :math:`y` sits between :math:`z` and :math:`x`."""
        raise NotImplementedError

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        state["z"] = torch.clone(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def eval(self) -> None:
        """Move every parameter from :math:`y` to the average :math:`x` (for evaluation)."""
        self._switch(False, lambda beta: 1 - 1 / beta)

    @torch.no_grad()
    def train(self) -> None:
        """Move every parameter from :math:`x` back to :math:`y` (before training steps)."""
        self._switch(True, lambda beta: 1 - beta)

    def _switch(self, to_train: bool, weight: Callable[[float], float]) -> None:
        for group in self.param_groups:
            if group["train_mode"] != to_train:
                w = weight(self._interpolation(group))
                for p in group["params"]:
                    state = self.state[p]
                    if "z" in state:
                        p.lerp_(state["z"].to(p.device), w)
                group["train_mode"] = to_train

    @staticmethod
    def _weight(group: dict[str, Any]) -> float:
        """:math:`w_{k+1} = (k+1)^r \\cdot \\gamma_{max}^{p}`, the new iterate's weight."""
        return ((group["k"] + 1) ** group["r"]) * (group["lr_max"] ** group["weight_lr_power"])

    def _rule_kwargs(self, group: dict[str, Any]) -> dict[str, Any]:
        kwargs = {name: group[name] for name in self.hyperparams if name in group}
        kwargs["lr"] = group["scheduled_lr"]
        try:
            kwargs["ckp1"] = self._weight(group) / group["weight_sum"]
        except ZeroDivisionError:
            kwargs["ckp1"] = 0
        return kwargs

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One step at :math:`y`; refused unless in train mode, as the reference."""
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(
                "Optimizer was not in train mode when step is called. Please insert .train() "
                "and .eval() calls on the optimizer. See documentation for details."
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:  # the warmup and the average's weights, per group
            k = group["k"]
            sched = (k + 1) / group["warmup_steps"] if k < group["warmup_steps"] else 1.0
            group["scheduled_lr"] = group["lr"] * sched
            group["lr_max"] = max(group["scheduled_lr"], group["lr_max"])
            group["weight_sum"] = group["weight_sum"] + self._weight(group)
        super().step()
        for group in self.param_groups:
            group["k"] += 1
        return loss


def _defaults(fused: bool | None, foreach: bool | None, **entries: Any) -> dict[str, Any]:
    """The reference's param-group entries (its order), plus ours: ``fused``.

    ``foreach`` only ever selects the same eager rule here, so with ``fused=True`` it is
    stored as None rather than refused (the reference's default for it is True).
    """
    bookkeeping = {"k": 0, "train_mode": False, "weight_sum": 0.0, "lr_max": -1.0,
                   "scheduled_lr": 0.0}
    order = ("lr", "betas", "momentum", "eps", "r", "k", "warmup_steps", "train_mode",
             "weight_sum", "lr_max", "scheduled_lr", "weight_lr_power", "weight_decay")
    merged = {**entries, **bookkeeping}
    defaults = {key: merged[key] for key in order if key in merged}
    defaults["foreach"] = None if fused else foreach
    defaults["fused"] = fused
    return defaults


class SGDScheduleFree(_ScheduleFree):
    """Schedule-Free SGD; drop-in for ``schedulefree.SGDScheduleFree`` (1.4.1).

    The update is :func:`sgd_schedulefree_update`. State per parameter: ``z``; per group the
    reference's bookkeeping entries, so state_dicts move between the two. Call ``train()``
    before stepping and ``eval()`` before evaluating or saving. ``fused=True`` runs the
    compiled form of the rule.
    """

    rule = staticmethod(sgd_schedulefree_update)
    state_keys = ("z",)
    hyperparams = ("lr", "ckp1", "momentum", "weight_decay")

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
        foreach: bool | None = _HAS_FOREACH,
        *,
        fused: bool | None = None,
    ) -> None:
        check(0.0 <= lr, "learning rate", lr)
        check(0.0 <= weight_decay, "weight_decay value", weight_decay)
        check(0.0 < momentum < 1.0, "momentum (must be between 0 and 1 exclusive)", momentum)
        defaults = _defaults(
            fused, foreach, lr=lr, momentum=momentum, r=r, warmup_steps=warmup_steps,
            weight_lr_power=weight_lr_power, weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    def _interpolation(self, group: dict[str, Any]) -> float:
        return group["momentum"]


class AdamWScheduleFree(_ScheduleFree):
    """Schedule-Free AdamW; drop-in for ``schedulefree.AdamWScheduleFree`` (1.4.1).

    The update is :func:`adamw_schedulefree_update`. State per parameter: ``z``,
    ``exp_avg_sq``; per group the reference's bookkeeping entries, so state_dicts move between
    the two. Call ``train()`` before stepping and ``eval()`` before evaluating or saving.
    ``fused=True`` runs the compiled form of the rule. Unlike the reference, bad
    hyperparameters raise ``ValueError`` (it checks none).
    """

    rule = staticmethod(adamw_schedulefree_update)
    state_keys = ("z", "exp_avg_sq")
    hyperparams = ("lr", "ckp1", "k", "betas", "eps", "weight_decay")
    tensor_hyperparams = frozenset({"lr", "ckp1", "k"})  # k counts the steps: a tensor too

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: bool | None = _HAS_FOREACH,
        *,
        fused: bool | None = None,
    ) -> None:
        check(0.0 <= lr, "learning rate", lr)
        check(0.0 <= eps, "epsilon value", eps)
        check(0.0 < betas[0] < 1.0, "beta parameter at index 0 (must be in (0, 1))", betas[0])
        check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
        check(0.0 <= weight_decay, "weight_decay value", weight_decay)
        defaults = _defaults(
            fused, foreach, lr=lr, betas=betas, eps=eps, r=r, warmup_steps=warmup_steps,
            weight_lr_power=weight_lr_power, weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    def _interpolation(self, group: dict[str, Any]) -> float:
        return group["betas"][0]

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = super()._init_state(p, group)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

"""Lookahead: slow weights that move a fraction of the way to the fast ones every k steps."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._base import check

__all__ = ["PULLBACK_MOMENTUM", "Lookahead", "lookahead_update"]

PULLBACK_MOMENTUM = ("none", "reset", "pullback")


def lookahead_update(fast: Tensor, slow: Tensor, alpha: float) -> None:
    r"""Lookahead's synchronisation: pull the slow weights toward the fast ones, restart there.

    With :math:`\theta` the fast weights after :math:`k` inner steps, :math:`\phi` the slow
    weights and :math:`\alpha` the step toward the fast weights:

    .. math::
        \phi \leftarrow \phi + \alpha(\theta - \phi), \qquad \theta \leftarrow \phi

    computed as ``fast.lerp_(slow, 1 - α)`` then ``slow ← fast`` (the reference's order).

    Example:
        >>> import torch
        >>> fast, slow = torch.tensor([2.0]), torch.tensor([0.0])
        >>> lookahead_update(fast, slow, alpha=0.5)
        >>> fast, slow
        (tensor([1.]), tensor([1.]))
    """
    fast.lerp_(slow, 1.0 - alpha)  # θ ← θ + (1-α)(φ - θ) = φ + α(θ - φ)
    slow.copy_(fast)  # φ ← θ


def _base_optimizer(optimizer: Any, kwargs: dict[str, Any]) -> Optimizer:
    """An optimizer instance, a class built with ``params=`` (as the reference), or one of
    our registry names built with ``params=``."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not (isinstance(optimizer, str) or callable(optimizer)):
        raise TypeError(
            "Lookahead wraps an optimizer: pass an instance, or a class or registry name "
            f"with params=…, not {type(optimizer).__name__}"
        )
    if "params" not in kwargs:
        raise ValueError("need to pass `params` when you pass an optimizer class or name")
    params = kwargs.pop("params")
    if isinstance(optimizer, str):
        from . import create  # the registry imports this module

        return create(optimizer, params, **kwargs)
    return optimizer(params, **kwargs)  # type: ignore[no-any-return]


class Lookahead(Optimizer):
    r"""Lookahead around any optimizer; drop-in for ``pytorch_optimizer.Lookahead`` (4.1.0).

    The inner optimizer takes :math:`k` steps; then :func:`lookahead_update` moves the slow
    weights (``state[p]['slow_params']``, a copy of the parameter at construction) toward
    the fast ones and resets the fast ones there. Only parameters with a gradient at that
    step are synchronised, as in the reference.

    Args:
        optimizer: the inner optimizer: an instance (ours or torch's), or a class or one of
            our registry names, built with ``params=…`` and the rest of ``**kwargs``.
        k: inner steps between synchronisations (default 5).
        alpha: :math:`\alpha`, the slow weights' step toward the fast ones, in [0, 1)
            (default 0.5).
        pullback_momentum: what happens to the inner optimizer's ``momentum_buffer`` at a
            synchronisation: ``"none"`` (kept), ``"reset"`` (zeroed) or ``"pullback"``
            (interpolated like the weights) (default ``"none"``).

    The step counter is a ``counter`` entry in each (shared) param group. ``state_dict()`` is
    the reference's: ``{"lookahead_state": {(group, index): {...}}, "base_optimizer": ...}``.
    ``backup_and_load_cache()`` puts the slow weights in the parameters for evaluation;
    ``clear_and_load_backup()`` restores the fast ones; ``eval()``/``train()`` do the same,
    idempotently (the mode switch the fit loop drives).

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Lookahead(torch.optim.SGD([w], lr=0.1), k=2, alpha=0.5)
        >>> for _ in range(2):
        ...     w.grad = torch.ones(1)
        ...     _ = opt.step()
        >>> w.detach()  # fast weights went 1.0 → 0.8; the slow ones moved half-way: 0.9
        tensor([0.9000])

    References:
        Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
        NeurIPS 2019, arXiv:1907.08610. Reference code: ``pytorch_optimizer`` 4.1.0.

    Notes:
        As the reference: the slow weights start as the parameters at construction, not at
        the first step; a parameter without a gradient at a synchronisation step is not
        synchronised; the momentum handling (``pullback_momentum``) is the reference's
        extension (the paper keeps the inner state).
    """

    #: the synchronisation step (the inner optimizer does the rest)
    rule = staticmethod(lookahead_update)

    def __init__(
        self,
        optimizer: Any,
        k: int = 5,
        alpha: float = 0.5,
        pullback_momentum: str = "none",
        **kwargs: Any,
    ) -> None:
        check(k > 0, "k (must be positive)", k)
        check(0.0 <= alpha < 1.0, "alpha (must be in [0, 1))", alpha)
        if pullback_momentum not in PULLBACK_MOMENTUM:
            raise ValueError(
                f"Invalid pullback_momentum: {pullback_momentum!r}; "
                f"valid: {', '.join(PULLBACK_MOMENTUM)}"
            )
        # Not Optimizer.__init__: the param groups are the inner optimizer's (a property).
        self.optimizer = _base_optimizer(optimizer, kwargs)
        self._optimizer_step_pre_hooks: dict[int, Callable[..., Any]] = OrderedDict()
        self._optimizer_step_post_hooks: dict[int, Callable[..., Any]] = OrderedDict()
        self.alpha = alpha
        self.k = k
        self.pullback_momentum = pullback_momentum
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for group in self.param_groups:
            self._init_group(group)
        self.defaults = {
            "lookahead_alpha": alpha,
            "lookahead_k": k,
            "lookahead_pullback_momentum": pullback_momentum,
            **self.optimizer.defaults,
        }

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    def __getstate__(self) -> dict[str, Any]:
        return {"state": self.state, "optimizer": self.optimizer, "alpha": self.alpha,
                "k": self.k, "pullback_momentum": self.pullback_momentum}

    def _init_group(self, group: dict[str, Any]) -> None:
        group.setdefault("counter", 0)
        for p in group.get("params", []):
            state = self.state[p]
            if "slow_params" not in state:
                state["slow_params"] = p.detach().clone()
                if self.pullback_momentum == "pullback":
                    state["slow_momentum"] = torch.zeros_like(p)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)
        self._init_group(self.param_groups[-1])

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One inner step; every ``k``-th, the synchronisation. Returns the inner loss."""
        loss = self.optimizer.step(closure)
        for group in self.param_groups:
            group["counter"] += 1
            if group["counter"] >= self.k:
                group["counter"] = 0
                self._synchronise(group)
        return loss

    def _synchronise(self, group: dict[str, Any]) -> None:
        inner = self.optimizer.state
        for p in group["params"]:
            if p.grad is None:
                continue
            lookahead_update(p, self.state[p]["slow_params"], self.alpha)
        if self.pullback_momentum == "pullback":
            for p in group["params"]:
                if p.grad is not None:
                    if "momentum_buffer" not in inner[p]:
                        inner[p]["momentum_buffer"] = torch.zeros_like(p)
                    lookahead_update(
                        inner[p]["momentum_buffer"], self.state[p]["slow_momentum"], self.alpha
                    )
        elif self.pullback_momentum == "reset":
            for p in group["params"]:
                if p.grad is not None:
                    inner[p]["momentum_buffer"] = torch.zeros_like(p)

    @torch.no_grad()
    def backup_and_load_cache(self) -> None:
        """Put the slow weights in the parameters (for evaluation), keeping the fast ones."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["backup_params"] = p.detach().clone()
                p.copy_(state["slow_params"])

    @torch.no_grad()
    def clear_and_load_backup(self) -> None:
        """Restore the fast weights saved by :meth:`backup_and_load_cache`."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                p.copy_(state.pop("backup_params"))

    def eval(self) -> None:
        """Evaluation mode: the slow weights in the parameters (:meth:`backup_and_load_cache`).

        With :meth:`train`, the ``train()``/``eval()`` protocol of Schedule-Free that
        ``optimlab.engine.fit`` drives: validation, checkpoints and the returned model see
        the slow weights, as the paper evaluates. Idempotent; the mode travels in the state
        (``backup_params``), so a run resumed from a checkpoint saved in evaluation mode
        trains on from the very same fast weights.
        """
        if not self._evaluating():
            self.backup_and_load_cache()

    def train(self) -> None:
        """Training mode: the fast weights back (:meth:`clear_and_load_backup`). Idempotent."""
        if self._evaluating():
            self.clear_and_load_backup()

    def _evaluating(self) -> bool:
        return any("backup_params" in self.state[p]
                   for group in self.param_groups for p in group["params"])

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        lookahead_state = {
            (gi, pi): dict(self.state[p])
            for gi, group in enumerate(self.param_groups)
            for pi, p in enumerate(group["params"])
            if p in self.state
        }
        return {"lookahead_state": lookahead_state, "base_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        saved = state_dict["lookahead_state"]
        restored: dict[Tensor, dict[str, Any]] = {}
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if (gi, pi) in saved:
                    restored[p] = dict(saved[(gi, pi)])
        count = sum(len(group["params"]) for group in self.param_groups)
        if len(restored) != len(saved) or len(restored) != count:
            raise ValueError("lookahead state does not match the current parameters")
        self.optimizer.load_state_dict(state_dict["base_optimizer"])
        for p, entries in restored.items():
            for key, value in entries.items():
                if isinstance(value, Tensor):
                    entries[key] = value.to(device=p.device, dtype=p.dtype).clone()
        self.state = defaultdict(dict, restored)

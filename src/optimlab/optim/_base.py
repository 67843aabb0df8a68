"""What every optimlab optimizer shares: state bookkeeping and dispatch to its update rule.

An optimizer class is a table: its update function (``rule``), the names of the state tensors
that function takes after ``(param, grad)`` (``state_keys``), the param-group entries it takes
as keyword hyperparameters (``hyperparams``) and how its state starts (``_init_state``).
:class:`RuleOptimizer` does the rest for all six algorithms: validation of the flags we honour,
the eager loop (bit-identical to ``torch.optim``'s ``foreach=False`` path because the rule
performs the same operations in the same order), and dispatch of ``fused=True`` groups to
:func:`optimlab.optim._fused.fused_step`, which derives its fast path from the same ``rule``.
The fast path gets what it needs from the table as one typed
:class:`~optimlab.optim._fused.RuleContract` per step, and nothing else.

``foreach=True`` is accepted for compatibility with ``torch.optim`` and runs the eager rule:
the algebra exists once, so there is no separate multi-tensor variant of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._fused import Plan, RuleContract, fused_step

__all__ = [
    "RuleOptimizer", "check", "check_adam_family", "scalar_dtype", "to_scalar", "zeros_state",
]


def check(ok: Any, what: str, value: object) -> None:
    """Raise torch's ``ValueError("Invalid <what>: <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"Invalid {what}: {value}")


def check_tensor_lr(lr: float | Tensor) -> None:
    """A tensor learning rate must hold exactly one value (torch's message)."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")


def check_adam_family(lr: float | Tensor, eps: float, betas: tuple[Any, Any],
                      weight_decay: float) -> None:
    """torch's checks, in torch's order and words, shared by Adam, AdamW, NAdam, RAdam, Adamax."""
    check(0.0 <= lr, "learning rate", lr)
    check(0.0 <= eps, "epsilon value", eps)
    check(0.0 <= betas[0] < 1.0, "beta parameter at index 0", betas[0])
    check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
    check(0.0 <= weight_decay, "weight_decay value", weight_decay)


def scalar_dtype(fused: bool | None = None) -> torch.dtype:
    """dtype of the ``step`` counter, as torch picks it (float32 when fused)."""
    if fused:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def to_scalar(x: Any) -> Any:
    """A one-element tensor hyperparameter as a 0-dim tensor; anything else unchanged."""
    if isinstance(x, Tensor) and x.dim() != 0:
        return x.squeeze()
    return x


def zeros_state(p: Tensor) -> Tensor:
    """A state buffer shaped (and strided) like ``p``, filled with zeros."""
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def step_counter(p: Tensor, group: dict[str, Any]) -> Tensor:
    """The ``step`` state entry exactly as torch creates it.

    Host a CPU float counter unless the group is capturable or fused, in which case it lives on
    the parameter's device (float32 when fused), so a state_dict moves between torch and us.
    """
    if group.get("fused") or group.get("capturable"):
        return torch.zeros((), dtype=scalar_dtype(group.get("fused")), device=p.device)
    return torch.zeros((), dtype=scalar_dtype())


def make_rule_call(state_keys: tuple[str, ...]) -> Callable[..., Any]:
    """``call(rule, p, grad, state, step, hp)`` = ``rule(p, grad, *state tensors, step, **hp)``.

    ``hp`` holds exactly ``hyperparams`` (see :meth:`RuleOptimizer._rule_kwargs`); the state
    tensors are looked up with a C-level ``map``, so the per-parameter cost stays small.
    """
    def call(
        rule: Callable[..., Any], p: Tensor, grad: Tensor, state: dict[str, Any], step: float,
        hp: dict[str, Any],
    ) -> Any:
        return rule(p, grad, *map(state.get, state_keys), step=step, **hp)

    return call


class RuleOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose step applies one update function to each parameter.

    Subclasses set the class attributes below (and override ``_init_state`` when their state
    does not start as a ``step`` counter plus zero buffers for ``state_keys``); their
    ``__init__`` validates the hyperparameters with torch's messages, then calls this one.
    """

    #: the update function ``rule(param, grad, *state, step=..., **hyperparams)``
    rule: ClassVar[Callable[..., Tensor | None]]
    #: names of the state tensors passed after ``grad``, in argument order (absent → ``None``)
    state_keys: ClassVar[tuple[str, ...]]
    #: param-group entries passed to the rule as keyword arguments
    hyperparams: ClassVar[tuple[str, ...]]
    #: ``rule``'s call with this table's arguments spelled out (see :func:`make_rule_call`)
    _rule_call: ClassVar[Any]
    #: hyperparameters the rule takes as 0-dim tensors on the fused path (new values, no
    #: recompile): numbers used only in arithmetic, never in an ``if``
    tensor_hyperparams: ClassVar[frozenset[str]] = frozenset({"lr"})
    #: whether sparse gradients are accepted (torch: SGD and Adagrad only)
    sparse_ok: ClassVar[bool] = False
    #: suffix for the sparse-gradient error, e.g. torch's hint to use SparseAdam
    sparse_hint: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "state_keys"):  # not an abstract base
            cls._rule_call = staticmethod(make_rule_call(cls.state_keys))

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        self._fused_plans: dict[int, Plan] = {}  # the fast path's layout per group, its cache
        if defaults.get("fused"):
            if defaults.get("differentiable"):
                raise RuntimeError("`fused` does not support `differentiable`")
            if defaults.get("foreach"):
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        self._check_supported(defaults)

    def _check_supported(self, group: dict[str, Any]) -> None:
        """Refuse, by name, the torch flags this implementation cannot honour."""
        for flag in ("capturable", "differentiable"):
            if group.get(flag):
                raise NotImplementedError(
                    f"optimlab.optim.{type(self).__name__} does not implement {flag}=True; "
                    f"use torch.optim.{type(self).__name__} for it"
                )

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A state_dict saved by torch.optim may lack our keyword-only options (``fused`` on
        # RMSprop/Adadelta): fill what is missing from this optimizer's own defaults.
        super().__setstate__(state)
        self._fused_plans = {}  # new groups and state (load_state_dict): lay them out anew
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            for p in group["params"]:  # old checkpoints stored ``step`` as a Python number
                p_state = self.state.get(p)
                if p_state and "step" in p_state and not torch.is_tensor(p_state["step"]):
                    counter = step_counter(p, group)
                    p_state["step"] = counter.fill_(float(p_state["step"]))

    # -- the table each algorithm fills in ---------------------------------------------------
    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """Create ``self.state[p]`` exactly as torch does (including ``step``) and return it.

        The default is torch's common layout: the ``step`` counter, then a zero buffer shaped
        like ``p`` for each of ``state_keys`` in order; classes whose state starts otherwise
        (optional buffers, non-zero fills, no counter) override it.
        """
        state = self.state[p]
        state["step"] = step_counter(p, group)
        for key in self.state_keys:
            state[key] = zeros_state(p)
        return state

    def _rule_kwargs(self, group: dict[str, Any]) -> dict[str, Any]:
        """The hyperparameters passed to ``rule`` for this group (everything except ``step``)."""
        kwargs = {name: group[name] for name in self.hyperparams}
        kwargs["lr"] = to_scalar(kwargs["lr"])
        return kwargs

    # -- dispatch ----------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._check_supported(group)
            params = self._params_with_grad(group)
            if group.get("fused"):
                fused_step(self._contract(group), group, params, self._fused_plans)
            else:
                self._eager_step(group, params)
        return loss

    def _contract(self, group: dict[str, Any]) -> RuleContract:
        """What the fast path needs for one step of ``group``, from this class's table."""
        return RuleContract(
            rule=self.rule,
            state_keys=self.state_keys,
            hyperparams=self._rule_kwargs(group),
            state=self.state,
            init_state=self._init_state,
            eager_step=self._eager_step,
            tensor_hyperparams=self.tensor_hyperparams,
        )

    def _params_with_grad(self, group: dict[str, Any]) -> list[Tensor]:
        """The group's parameters that have a gradient; sparse ones refused unless supported."""
        params = []
        for p in group["params"]:
            grad = p.grad
            if grad is not None:
                if grad.is_sparse and not self.sparse_ok:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients"
                        f"{self.sparse_hint}"
                    )
                params.append(p)
        return params

    def _eager_step(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """Apply ``rule`` to each parameter in turn, as torch's for-loop path does."""
        # Locals and the spelled-out ``_rule_call`` keep the per-parameter Python cost at
        # torch's level: on many small tensors this loop, not the arithmetic, is the step time.
        rule, call, keys, states = self.rule, self._rule_call, self.state_keys, self.state
        kwargs = self._rule_kwargs(group)
        for p in params:
            state = states.get(p) or self._init_state(p, group)
            step = 0.0
            counter = state.get("step")
            if counter is not None:
                counter += 1  # in place, like torch's ``step_t += 1``
                step = counter.item()  # a Python float, like torch when not capturable
            created = call(rule, p, p.grad, state, step, kwargs)
            if created is not None:  # SGD creates its momentum buffer on the first step
                states[p][keys[0]] = created

"""Learning-rate schedulers by name: torch's own classes, looked up case-insensitively.

``create_scheduler("steplr", opt, step_size=10)`` is ``torch.optim.lr_scheduler.StepLR(opt,
step_size=10)``. Every scheduler class of ``torch.optim.lr_scheduler`` that is built from an
optimizer and plain arguments is available (``SequentialLR`` and ``ChainedScheduler``, which
take other schedulers, are not), plus short aliases such as ``plateau``. In :func:`optimlab.
engine.fit` a scheduler steps once per epoch; ``ReduceLROnPlateau`` steps with the validation
loss, on validation epochs only.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import lr_scheduler as _lrs

from optimlab.engine.arguments import accepted_arguments, check_arguments, shown
from optimlab.errors import UserError

_EXCLUDED = {"LRScheduler", "_LRScheduler", "SequentialLR", "ChainedScheduler"}

_CLASSES: dict[str, type] = {
    name.lower(): cls
    for name, cls in vars(_lrs).items()
    if inspect.isclass(cls)
    and name not in _EXCLUDED
    and (issubclass(cls, _lrs.LRScheduler) or cls is _lrs.ReduceLROnPlateau)
}

ALIASES = {
    "plateau": "reducelronplateau",
    "step": "steplr",
    "multistep": "multisteplr",
    "exponential": "exponentiallr",
    "cosine": "cosineannealinglr",
    "cosine-restarts": "cosineannealingwarmrestarts",
    "onecycle": "onecyclelr",
    "linear": "linearlr",
    "constant": "constantlr",
    "polynomial": "polynomiallr",
    "cyclic": "cycliclr",
}


def scheduler_names() -> tuple[str, ...]:
    """All names :func:`create_scheduler` accepts (lower-case class names and aliases), sorted."""
    return tuple(sorted({*_CLASSES, *ALIASES}))


def scheduler_class(name: str) -> type:
    """The torch scheduler class for ``name`` (case-insensitive, aliases allowed)."""
    key = name.lower().replace("_", "")
    key = ALIASES.get(key, ALIASES.get(name.lower(), key))
    cls = _CLASSES.get(key)
    if cls is None:
        raise UserError(f"unknown scheduler {shown(name)}; valid: "
                        f"{', '.join(sorted(c.__name__.lower() for c in _CLASSES.values()))}")
    return cls


@dataclass(frozen=True)
class Schedule:
    """A scheduler choice parsed and checked once: torch's class and its keyword arguments.

    Made by :func:`parse_schedule` (names, argument names and types checked); it travels with
    a planned run to :func:`optimlab.engine.fit`, which calls :meth:`build` on its optimizer.
    :meth:`check` rehearses the whole schedule first, so values that only fail when the
    scheduler steps (``step_size=0``, a ``total_steps`` shorter than the run, ``gamma=-1``
    making the learning rate negative) are refused before training starts.
    """

    cls: type
    kwargs: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # as the user wrote it, for messages

    @property
    def name(self) -> str:
        return self.cls.__name__

    @property
    def per_validation(self) -> bool:
        """True for ReduceLROnPlateau: it steps with the validation loss."""
        return self.cls is _lrs.ReduceLROnPlateau

    def _label(self) -> str:
        return shown(self.text, 60) if self.text else self.name

    def build(self, optimizer: torch.optim.Optimizer) -> Any:
        """The scheduler on ``optimizer``; a value torch rejects becomes a :class:`UserError`."""
        try:
            return self.cls(optimizer, **self.kwargs)
        except (TypeError, ValueError, KeyError, ZeroDivisionError, OverflowError) as e:
            raise UserError(f"scheduler {self._label()}: bad argument: {_one_line(e)}") from None

    def check(self, optimizer: torch.optim.Optimizer, steps: int) -> None:
        """Build on a stand-in of ``optimizer`` and step it ``steps`` times: it must not fail
        and every group's learning rate must stay finite and >= 0 (``optimizer`` is untouched).
        """
        stand_in = _StandIn(optimizer)
        scheduler = self.build(stand_in)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
            for step in range(steps + 1):
                for group in stand_in.param_groups:
                    lr = float(group["lr"])
                    if not math.isfinite(lr) or lr < 0:
                        raise UserError(f"scheduler {self._label()} makes the learning rate "
                                        f"{lr:.3g} at step {step}; it must stay finite and >= 0")
                if step == steps:
                    break
                try:
                    scheduler.step(0.0) if self.per_validation else scheduler.step()
                except (TypeError, ValueError, KeyError, ZeroDivisionError, OverflowError,
                        IndexError) as e:
                    raise UserError(f"scheduler {self._label()} fails at step {step + 1} of "
                                    f"{steps}: {_one_line(e)}") from None


class _StandIn(torch.optim.Optimizer):
    """A copy of an optimizer's param groups (hyperparameters only, one dummy parameter each)
    that schedulers can be rehearsed on without touching the real optimizer."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        groups = [{k: (v.clone() if isinstance(v, torch.Tensor) else v)
                   for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        for g in groups:
            g["params"] = [torch.zeros(1, requires_grad=True)]
        super().__init__(groups, dict(optimizer.defaults))

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        return None


def _one_line(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_schedule(name: str, kwargs: dict[str, Any] | None = None, *, text: str = "") -> Schedule:
    """The :class:`Schedule` for scheduler ``name`` with ``kwargs``, checked without building.

    Unknown names and arguments, missing required arguments and values of the wrong type raise
    :class:`UserError` naming the scheduler and the argument. Recipes (``warmup_cosine``, …)
    and schedulers left without their length come from :mod:`optimlab.engine.recipes`.
    """
    from optimlab.engine.recipes import schedule_for_name  # it builds on this module

    kwargs = dict(kwargs or {})
    composite = schedule_for_name(name, kwargs, text)
    if composite is not None:
        return composite
    cls = scheduler_class(name)
    what = f"scheduler {cls.__name__}"
    check_arguments(cls, kwargs, what=what)
    try:
        inspect.signature(cls).bind(None, **kwargs)
    except TypeError as e:
        raise UserError(f"{what}: {e}; arguments: "
                        f"{', '.join(accepted_arguments(cls))}") from None
    return Schedule(cls, kwargs, text)


def create_scheduler(name: str, optimizer: torch.optim.Optimizer, **kwargs: Any) -> Any:
    """Build the scheduler called ``name`` on ``optimizer`` with keyword arguments ``kwargs``.

    Unknown names, unknown or missing arguments and values torch rejects raise
    :class:`UserError` naming the scheduler and the argument.

    Example::

        sched = create_scheduler("plateau", opt, factor=0.1, patience=7)   # seed 003
    """
    return parse_schedule(name, kwargs).build(optimizer)

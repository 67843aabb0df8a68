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
from typing import Any

import torch
from torch.optim import lr_scheduler as _lrs

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
        raise UserError(f"unknown scheduler {name!r}; valid: {', '.join(scheduler_names())}")
    return cls


def create_scheduler(name: str, optimizer: torch.optim.Optimizer, **kwargs: Any) -> Any:
    """Build the scheduler called ``name`` on ``optimizer`` with keyword arguments ``kwargs``.

    Unknown names, unknown or missing arguments and values torch rejects raise
    :class:`UserError` naming the scheduler and the argument.

    Example::

        sched = create_scheduler("plateau", opt, factor=0.1, patience=7)   # seed 003
    """
    cls = scheduler_class(name)
    sig = inspect.signature(cls)
    valid = [p for p in sig.parameters if p != "optimizer"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise UserError(
            f"unknown argument {unknown[0]!r} for scheduler {cls.__name__}; "
            f"valid: {', '.join(valid)}"
        )
    try:
        sig.bind(optimizer, **kwargs)
    except TypeError as e:
        raise UserError(f"scheduler {cls.__name__}: {e}; arguments: {', '.join(valid)}") from e
    try:
        return cls(optimizer, **kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"scheduler {cls.__name__}: bad argument: {e}") from e

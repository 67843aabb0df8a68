"""Optimizers that wrap another (SAM, Lookahead), built from names.

What a lab spec such as ``sam(sgd):rho=0.05,lr=0.1,momentum=0.9`` or
``lookahead(adam):k=5,alpha=0.5,lr=1e-3`` needs once parsed: the wrapper's name, the inner
optimizer's name and one flat set of keywords, which :func:`create_wrapped` splits between the
two by the wrapper's own signature.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch.optim import Optimizer

from .lookahead import Lookahead
from .sam import SAM

__all__ = ["WRAPPERS", "create_wrapped", "wrapper_options"]

#: wrapper name → class
WRAPPERS: dict[str, type[Optimizer]] = {"lookahead": Lookahead, "sam": SAM}
#: constructor arguments that are not the wrapper's own options
_NOT_OPTIONS = {"params", "base_optimizer", "optimizer", "foreach", "kwargs"}


def wrapper_options(wrapper: str) -> tuple[str, ...]:
    """The keywords that belong to ``wrapper`` itself, e.g. SAM's ``rho, adaptive, use_gc,
    perturb_eps``; every other keyword goes to the inner optimizer."""
    cls = WRAPPERS[wrapper]
    return tuple(n for n in inspect.signature(cls).parameters if n not in _NOT_OPTIONS)


def create_wrapped(wrapper: str, inner: str, params: Any, **hparams: Any) -> Optimizer:
    """Build ``wrapper`` (``"sam"`` or ``"lookahead"``) around our optimizer ``inner``.

    ``hparams`` mixes both: the wrapper's options (:func:`wrapper_options`) go to it, the
    rest to ``inner``. An unknown or nested name raises ``UnknownOptimizer`` (a
    ``ValueError``) listing the valid ones; bad values raise the classes' own errors.

    >>> import torch
    >>> w = [torch.zeros(2, requires_grad=True)]
    >>> opt = create_wrapped("sam", "sgd", w, rho=0.1, lr=0.1, momentum=0.9)
    >>> type(opt).__name__, type(opt.base_optimizer).__name__, opt.param_groups[0]["rho"]
    ('SAM', 'SGD', 0.1)
    """
    from . import UnknownOptimizer, available, create  # the registry imports the wrappers

    if wrapper not in WRAPPERS:
        raise UnknownOptimizer(
            f"unknown wrapper {wrapper!r}; valid: {', '.join(sorted(WRAPPERS))}"
        )
    inners = [name for name in available() if name not in WRAPPERS]
    if inner not in inners:
        raise UnknownOptimizer(
            f"unknown optimizer {inner!r} inside {wrapper}(…); valid: {', '.join(inners)}"
        )
    options = wrapper_options(wrapper)
    own = {k: v for k, v in hparams.items() if k in options}
    rest = {k: v for k, v in hparams.items() if k not in options}
    if wrapper == "sam":
        return SAM(params, inner, **own, **rest)
    return Lookahead(create(inner, params, **rest), **own)

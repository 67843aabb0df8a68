"""optimlab.optim: the seed notebooks' optimizers, each update rule written once.

``SGD, Adagrad, RMSprop, Adam, AdamW, Adadelta`` are subclasses of ``torch.optim.Optimizer``
with torch 2.14's constructor signatures, state keys and state_dicts; on the default path their
trajectories are bit-identical to ``torch.optim``'s for-loop implementation. Each class holds
state and dispatches to one function (``sgd_update``, ``adagrad_update``, ``rmsprop_update``,
``adam_update``, ``adadelta_update``) whose lines follow the algorithm's equations.

``create(name, params, **hparams)`` builds one by its lower-case name; ``available()`` lists
the names.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer

from .adadelta import Adadelta, adadelta_update
from .adagrad import Adagrad, adagrad_update
from .adam import Adam, AdamW, adam_update
from .adamax import Adamax, adamax_update
from .lion import Lion, lion_update
from .lookahead import Lookahead
from .muon import Muon, MuonWithAdamW, muon_update
from .nadam import NAdam, nadam_update
from .prodigy import Prodigy, prodigy_update
from .radam import RAdam, radam_update
from .rmsprop import RMSprop, rmsprop_update
from .sam import SAM
from .schedulefree import (
    AdamWScheduleFree,
    SGDScheduleFree,
    adamw_schedulefree_update,
    sgd_schedulefree_update,
)
from .sgd import SGD, sgd_update

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "AdamWScheduleFree",
    "Adamax",
    "Lion",
    "Lookahead",
    "Muon",
    "MuonWithAdamW",
    "NAdam",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "SAM",
    "SGDScheduleFree",
    "UnknownOptimizer",
    "adadelta_update",
    "adagrad_update",
    "adam_update",
    "adamax_update",
    "adamw_schedulefree_update",
    "available",
    "create",
    "lion_update",
    "muon_update",
    "nadam_update",
    "prodigy_update",
    "radam_update",
    "rmsprop_update",
    "sgd_schedulefree_update",
    "sgd_update",
]

_REGISTRY: dict[str, type[Optimizer]] = {
    "adadelta": Adadelta,
    "adagrad": Adagrad,
    "adam": Adam,
    "adamw": AdamW,
    "adamw_schedulefree": AdamWScheduleFree,
    "adamax": Adamax,
    "lion": Lion,
    "lookahead": Lookahead,
    "muon": Muon,
    "muon_adamw": MuonWithAdamW,
    "nadam": NAdam,
    "prodigy": Prodigy,
    "radam": RAdam,
    "rmsprop": RMSprop,
    "sam": SAM,
    "sgd": SGD,
    "sgd_schedulefree": SGDScheduleFree,
}


class UnknownOptimizer(ValueError):
    """An optimizer name that is not in the registry; the message lists the valid ones.

    A plain ``ValueError`` subclass: ``optimlab.optim`` imports nothing but torch, and callers
    (the lab, which maps it to a user error) catch it as the ``ValueError`` it is.
    """


def available() -> tuple[str, ...]:
    """The registered optimizer names, lower case, sorted."""
    return tuple(sorted(_REGISTRY))


def create(name: str, params: Any, **hparams: Any) -> Optimizer:
    """Build the optimizer called ``name`` (e.g. ``"adam"``) over ``params``.

    ``hparams`` are the class's constructor arguments (``lr=…, betas=…``); a bad value raises
    the same ``ValueError``/``TypeError`` as ``torch.optim``. Names are matched in lower case.

    >>> import torch
    >>> opt = create("sgd", [torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    >>> type(opt).__name__
    'SGD'
    """
    cls = _REGISTRY.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise UnknownOptimizer(f"unknown optimizer {name!r}; valid: {', '.join(available())}")
    return cls(params, **hparams)

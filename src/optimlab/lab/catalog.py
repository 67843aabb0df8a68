"""What a comparison can use — optimizers, schedulers, datasets, models — with their defaults.

Everything is read from the registries (``optimlab.optim.available()`` and each class's
constructor signature, ``optimlab.engine.schedules.scheduler_names()``,
``optimlab.data.DATASET_NAMES``, ``optimlab.models.MODEL_NAMES``), never listed by hand, so an
optimizer added to the registry appears here with its defaults. ``optimlab list`` prints it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

REQUIRED = "<required>"


@dataclass(frozen=True)
class Entry:
    """One name a spec or flag may use, its defaults (``REQUIRED`` if none) and a note."""

    name: str
    defaults: dict[str, Any]
    note: str = ""


def signature_defaults(fn: Any, skip: int) -> dict[str, Any]:
    """Keyword parameters of ``fn`` after the first ``skip`` ones, with their defaults.

    ``*args``/``**kwargs`` are left out; a parameter without a default maps to ``REQUIRED``.
    """
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)][skip:]
    return {p.name: REQUIRED if p.default is p.empty else p.default for p in params}


def optimizers() -> list[Entry]:
    """optimlab's optimizers, each with its constructor's defaults (the lab's ``muon``: the
    hybrid's; a wrapper's note says how to write it)."""
    from optimlab import optim
    from optimlab.lab.spec import LAB_NAMES
    from optimlab.optim.wrappers import WRAPPERS

    entries = []
    for name in optim.available():
        cls = _optimizer_class(name)
        if cls is None:
            entries.append(Entry(name, {}, "defaults: see help(optimlab.optim)"))
            continue
        note = cls.__name__
        if name in WRAPPERS:
            note += f"; wraps another optimizer: {name}(INNER):key=value,..."
        if name in LAB_NAMES:
            note += (f" in the lab (= {LAB_NAMES[name]}: Muon on the hidden weight matrices, "
                     "AdamW on the rest)")
        entries.append(Entry(name, signature_defaults(cls, skip=1), note))
    return entries


def _optimizer_class(name: str) -> type | None:
    """The class registered as ``name``: found by its name, else by building it once over a
    small throwaway MLP (the registry may name a class otherwise, e.g. ``muon_adamw``)."""
    import torch

    from optimlab import optim
    from optimlab.lab.spec import Spec, optimizer_class

    cls = optimizer_class(Spec(name))
    if cls is not None:
        return cls
    layers = [torch.nn.Linear(4, 4) for _ in range(3)] + [torch.nn.Linear(4, 2)]
    try:
        return type(optim.create(name, torch.nn.Sequential(*layers).parameters()))
    except (ValueError, TypeError):  # it needs arguments or parameters of another kind
        return None


def torch_optimizers() -> list[str]:
    """The ``torch.<Name>`` specs: torch.optim's own classes."""
    from optimlab import optim
    from optimlab.lab.spec import valid_optimizer_names

    return [n for n in valid_optimizer_names() if n not in optim.available()]


def schedulers() -> list[Entry]:
    """Every scheduler name with its torch class's defaults; an alias notes its class."""
    from optimlab.engine.schedules import scheduler_class, scheduler_names

    entries = []
    for name in scheduler_names():
        cls = scheduler_class(name)
        alias = name.replace("_", "") != cls.__name__.lower()
        entries.append(Entry(name, {} if alias else signature_defaults(cls, skip=1),
                             f"= {cls.__name__.lower()}" if alias else cls.__name__))
    return entries


def datasets() -> list[Entry]:
    """The dataset names with where their data comes from."""
    from optimlab.data import DATASET_NAMES, DATASET_SOURCES

    return [Entry(name, {}, DATASET_SOURCES.get(name, "")) for name in DATASET_NAMES]


def models() -> list[Entry]:
    """The model names with their layers, as built for 8×8 digits (or 3×32×32 images)."""
    from optimlab.errors import UserError
    from optimlab.models import MODEL_NAMES, build_model

    entries = []
    for name in MODEL_NAMES:
        for shape in ((1, 8, 8), (3, 32, 32)):
            try:
                model = build_model(name, shape, 10)
            except UserError:
                continue
            size = sum(p.numel() for p in model.parameters())
            entries.append(Entry(name, {}, f"{_layers(model)}  ({size:,} parameters for "
                                            f"{'×'.join(map(str, shape))} inputs, 10 classes)"))
            break
        else:
            entries.append(Entry(name, {}, ""))
    return entries


def _layers(model: Any) -> str:
    """``Linear(64→128) → LeakyReLU → …``: the model's leaf modules in order."""
    from torch import nn

    parts = []
    for m in model.modules():
        if any(True for _ in m.children()):
            continue
        if isinstance(m, nn.Linear):
            parts.append(f"Linear({m.in_features}→{m.out_features})")
        elif isinstance(m, nn.Conv2d):
            k = "×".join(map(str, m.kernel_size))
            parts.append(f"Conv2d({m.in_channels}→{m.out_channels}, {k})")
        else:
            parts.append(type(m).__name__)
    return " → ".join(parts)

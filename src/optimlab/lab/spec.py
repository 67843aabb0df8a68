"""Optimizer and scheduler specs: ``name`` or ``name:key=value,...`` on the command line.

A spec names a registered optimizer (``sgd``, ``adam``, …), or torch's own class with the
``torch.`` prefix (``torch.Adam``, case-insensitive after the dot) for side-by-side checks, and
sets hyperparameters. The text after ``:`` is split on commas at the top level only, so
``adam:lr=1e-3,betas=(0.9,0.99)`` has two items. Values are Python literals read with
:func:`ast.literal_eval` — never evaluated — plus ``true``/``false`` (any case) as booleans and
bare words (``mode=max``) as strings.

A wrapper spec puts one optimizer inside another: ``sam(sgd):rho=0.05,lr=0.1,momentum=0.9``
or ``lookahead(adam):k=5,alpha=0.5``. The keywords are one flat list: the wrapper's own
options (:func:`optimlab.optim.wrappers.wrapper_options`) go to it, the rest to the inner
optimizer (ours or ``torch.<Name>``); wrappers do not nest (:mod:`optimlab.lab.wrapped`
checks and builds them). In the lab ``muon`` is the hybrid
``muon_adamw`` (:data:`LAB_NAMES`): Muon on the model's hidden weight matrices, AdamW on the
rest, ``adamw_lr=…`` setting the latter's lr.

Mistakes raise :class:`~optimlab.errors.UserError` naming the bad part and the valid choices;
an invalid value is reported with the optimizer's (or scheduler's) own message.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optimlab.engine.arguments import accepted_arguments, check_arguments, shown
from optimlab.errors import UserError

if TYPE_CHECKING:
    from optimlab.engine.schedules import Schedule

TORCH_PREFIX = "torch."
#: torch.optim classes a comparison cannot run, and why (they are not offered as valid names)
TORCH_REFUSED = {
    "sparseadam": "it updates only sparse gradients (nn.Embedding(sparse=True)); optimlab's "
                  "models have dense ones",
}
#: hyperparameters fit cannot honour, and why
REFUSED_VALUES = {
    ("capturable", True): "capturable=true is for CUDA-graph capture, which optimlab's fit "
                          "does not do; drop it",
}
_BARE_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: ``wrapper(inner)``: a wrapper's name and the inner optimizer's (no brackets: no nesting)
WRAPPED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(\s*([^()\s]+)\s*\)$")
#: names that build another registry entry in the lab, which always has a model: ``muon`` is
#: Muon on the hidden weight matrices plus AdamW on the rest (``optimlab.optim.create("muon")``
#: stays torch's pure Muon)
LAB_NAMES = {"muon": "muon_adamw"}


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the name as given, and the hyperparameters in the order written."""

    name: str
    hparams: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def is_torch(self) -> bool:
        """True for ``torch.<Name>``: torch.optim's own class rather than ours."""
        return self.name.lower().startswith(TORCH_PREFIX)

    @property
    def wrapper(self) -> str | None:
        """``"sam"`` for ``sam(sgd)``: the wrapper's name in lower case; None for a plain spec."""
        match = WRAPPED.match(self.name)
        return match.group(1).lower() if match else None

    @property
    def inner(self) -> Spec | None:
        """The inner optimizer of a wrapper spec (``sgd`` for ``sam(sgd)``), without values."""
        match = WRAPPED.match(self.name)
        return Spec(match.group(2)) if match else None

    @property
    def label(self) -> str:
        """A readable name: ``sgd``, ``sgd(lr=0.01, momentum=0.9)``, ``sam(sgd, rho=0.1)``."""
        if not self.hparams:
            return self.name
        items = ", ".join(f"{k}={format_value(v)}" for k, v in self.hparams.items())
        if self.wrapper is not None:
            return f"{self.name[:-1]}, {items})"
        return f"{self.name}({items})"


def format_value(value: Any) -> str:
    """A hyperparameter value as a spec would write it (``true``, ``0.001``, ``(0.9, 0.99)``).

    Floats are written exactly, in the shortest form that reads back to the same number, with
    an exponent from a million up: ``1e+10``, not ``10000000000.0``; ``100.0``, not ``1e+02``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _exact_float(value)
    if isinstance(value, list | tuple):  # tuples come back from JSON as lists
        items = ", ".join(format_value(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def _exact_float(x: float) -> str:
    if x != x or x in (float("inf"), float("-inf")):
        return repr(x)
    digits = next(d for d in range(1, 18) if float(f"{x:.{d}g}") == x)
    exponent = int(f"{x:e}".split("e")[1])
    # up to six digits before the point stay plain (100.0, 123456.0); beyond, an exponent
    text = f"{x:.{max(digits, min(exponent + 1, 6))}g}"
    return text if any(c in text for c in ".e") else f"{text}.0"


def split_top_level(text: str) -> list[str]:
    """Split ``text`` on commas that are not inside brackets or quotes."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise UserError(f"unbalanced {ch!r} in {shown(text, 60)}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quote:
        raise UserError(f"unbalanced brackets or quotes in {shown(text, 60)}")
    parts.append(text[start:])
    return parts


def parse_value(text: str, *, key: str, spec: str) -> Any:
    """A literal value; ``true``/``false`` are booleans and a bare word is a string."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, OverflowError):
        if _BARE_WORD.match(text):
            return text
        raise UserError(
            f"invalid value {shown(text)} for {key!r} in {shown(spec, 60)}: expected a literal "
            "such as 0.01, 1e-3, true, (0.9, 0.999)"
        ) from None


def parse_spec(text: str, *, kind: str = "optimizer") -> Spec:
    """Parse ``name`` or ``name:key=value,...`` into a :class:`Spec` (names not checked here)."""
    raw = text.strip()
    name, sep, rest = raw.partition(":")
    name = name.strip()
    if not name:
        raise UserError(f"empty {kind} name in spec {shown(text, 60)}; expected name or "
                        "name:key=value,...")
    if kind == "optimizer" and any(c in name for c in "()"):
        from optimlab.lab.wrapped import wrapper_name

        name = wrapper_name(name, text)
    hparams: dict[str, Any] = {}
    if sep and rest.strip():
        for item in split_top_level(rest):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier():
                raise UserError(f"bad item {shown(item.strip())} in {kind} spec "
                                f"{shown(text, 60)}; expected key=value")
            if key in hparams:
                raise UserError(f"{key!r} given twice in {kind} spec {shown(text, 60)}")
            hparams[key] = parse_value(value, key=key, spec=text)
    return Spec(name=name, hparams=hparams, text=raw)


def _torch_classes() -> dict[str, type]:
    import torch

    return {
        n.lower(): c
        for n, c in vars(torch.optim).items()
        if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and c is not
        torch.optim.Optimizer and n.lower() not in TORCH_REFUSED
    }


def _our_classes() -> dict[str, type]:
    import torch

    from optimlab import optim

    found = {
        n.lower(): c
        for n, c in vars(optim).items()
        if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)
    }
    found["muon_adamw"] = optim.MuonWithAdamW  # registered under another name than its class
    return {n: found[n] for n in optim.available() if n in found}


def valid_optimizer_names() -> list[str]:
    """Every name a spec may use: ours, then ``torch.<Name>`` for torch.optim's classes."""
    from optimlab import optim

    torch_names = sorted(f"{TORCH_PREFIX}{c.__name__}" for c in _torch_classes().values())
    return list(optim.available()) + torch_names


def optimizer_class(spec: Spec) -> type | None:
    """The class a spec names, or None when only the factory knows it."""
    if spec.wrapper is not None:
        from optimlab.optim.wrappers import WRAPPERS

        return WRAPPERS.get(spec.wrapper)
    if spec.is_torch:
        return _torch_classes().get(spec.name[len(TORCH_PREFIX):].lower())
    name = spec.name.lower()
    return _our_classes().get(LAB_NAMES.get(name, name))


def check_optimizer_name(spec: Spec) -> None:
    """Raise UserError when the spec names no known optimizer (a short list: ours, then how to
    name torch's)."""
    from optimlab import optim
    from optimlab.optim.wrappers import WRAPPERS

    if spec.wrapper is not None:
        from optimlab.lab.wrapped import check_wrapper_names

        check_wrapper_names(spec)
        return
    if spec.name.lower() in WRAPPERS:
        raise UserError(f"{spec.name} wraps another optimizer: write {spec.name.lower()}(INNER)"
                        ":key=value,..., e.g. sam(sgd):rho=0.05,lr=0.1 or "
                        "lookahead(adam):k=5,alpha=0.5")
    torch_name = spec.name[len(TORCH_PREFIX):].lower() if spec.is_torch else ""
    if torch_name in TORCH_REFUSED:
        raise UserError(f"{spec.name} is not supported: {TORCH_REFUSED[torch_name]}")
    known = spec.name.lower() in optim.available() if not spec.is_torch else (
        optimizer_class(spec) is not None
    )
    if not known:
        raise UserError(
            f"unknown optimizer {shown(spec.name)}; ours: {', '.join(optim.available())}; "
            f"torch.<Name> for torch.optim's classes (optimlab list shows all)"
        )


def hyperparameter_names(spec: Spec) -> list[str] | None:
    """The keys a (name-checked) spec accepts; a wrapper's options then its inner's. None when
    only a factory knows them."""
    if spec.wrapper is not None:
        from optimlab.optim.wrappers import wrapper_options

        assert spec.inner is not None
        inner = hyperparameter_names(spec.inner)
        return None if inner is None else [*wrapper_options(spec.wrapper), *inner]
    cls = optimizer_class(spec)
    return None if cls is None else list(accepted_arguments(cls))


def check_hyperparameters(spec: Spec) -> None:
    """Names and types of a spec's hyperparameters against the constructor's signature.

    Booleans take true/false only, floats a finite number only (see
    :mod:`optimlab.engine.arguments`); values fit cannot honour are refused. Ranges are left
    to the constructor (:func:`build_optimizer` reports its message).
    """
    for (key, value), why in REFUSED_VALUES.items():
        if spec.hparams.get(key) is value:
            raise UserError(f"{shown(spec.text or spec.name, 60)}: {why}")
    if spec.wrapper is not None:
        from optimlab.lab.wrapped import check_wrapper_hyperparameters

        check_wrapper_hyperparameters(spec)
        return
    cls = optimizer_class(spec)
    if cls is not None:
        check_arguments(cls, spec.hparams, what=f"optimizer {shown(spec.name)}")


def build_optimizer(spec: Spec, params: Any) -> Any:
    """Construct the optimizer a spec names over ``params`` (an ``nn.Module`` or parameters).

    Give the model where there is one: ``muon`` (the lab's hybrid, :data:`LAB_NAMES`) reads
    its layers to tell the embeddings apart; every other optimizer gets its parameters.
    Unknown names and hyperparameters become UserError listing the valid ones; a value of the
    wrong type is refused before the constructor runs; an invalid value becomes UserError
    carrying the optimizer's own ValueError/TypeError message.
    """
    import torch

    check_optimizer_name(spec)
    check_hyperparameters(spec)
    cls = optimizer_class(spec)
    module = params if isinstance(params, torch.nn.Module) else None
    if module is not None:
        params = module.parameters()
    try:
        if spec.wrapper is not None:
            from optimlab.lab.wrapped import build_wrapped

            return build_wrapped(spec, params)
        if spec.is_torch:
            assert cls is not None
            return cls(params, **spec.hparams)
        from optimlab import optim

        name = spec.name.lower()
        if name in LAB_NAMES:
            return optim.create(LAB_NAMES[name], module if module is not None else params,
                                **spec.hparams)
        return optim.create(name, params, **spec.hparams)
    except (ValueError, TypeError, RuntimeError) as e:
        message = " ".join(str(e).split())
        raise UserError(f"invalid {shown(spec.text or spec.name, 60)}: {message[:160]}"
                        ) from None


def check_optimizer_spec(spec: Spec) -> None:
    """Validate a spec up front by building it over one throwaway parameter (three small
    weight matrices for Muon's hybrid, which needs a hidden one)."""
    import torch

    hybrid = not spec.is_torch and LAB_NAMES.get(spec.name.lower(), spec.name.lower()) in set(
        LAB_NAMES.values())
    shapes = [(2, 2)] * 3 if hybrid else [(1,)]
    build_optimizer(spec, [torch.nn.Parameter(torch.zeros(s)) for s in shapes])


def parse_scheduler_spec(text: str) -> Schedule:
    """A scheduler spec (``steplr:step_size=10,gamma=0.1``, a recipe, ``A then B``) parsed and
    checked once, as the :class:`~optimlab.engine.schedules.Schedule` that travels with every
    planned run (:func:`optimlab.engine.recipes.parse_scheduler_spec` reads the chains)."""
    from optimlab.engine import recipes

    return recipes.parse_scheduler_spec(text)


def unique_names(labels: list[str]) -> list[str]:
    """Make labels unique (``adam``, ``adam#2``) so runs can be told apart."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def folder_name(name: str) -> str:
    """A run name made safe as a folder name (keeps letters, digits, ``.=-_``)."""
    safe = re.sub(r"[^A-Za-z0-9.=_-]+", "_", name).strip("_.")
    return safe or "run"


def folder_names(names: list[str]) -> list[str]:
    """Sanitised, unique folder names in the order of ``names``."""
    out: list[str] = []
    used: set[str] = set()
    for name in names:
        base = folder_name(name)
        candidate, i = base, 1
        while candidate in used:
            i += 1
            candidate = f"{base}-{i}"
        used.add(candidate)
        out.append(candidate)
    return out

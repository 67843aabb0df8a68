"""Optimizer cards for ``optimlab explain``, read from the update rules' own docstrings.

A card is the rule's summary line, its update in plain-text math (the ``.. math::`` block), the
class's constructor defaults, the References and Notes sections (the paper, and where torch or
the reference implementation deviates from it) and the seed notebooks that cover it. The text
exists once, in the docstring; this module only finds and renders it. The docstring is the
class's ``rule`` (its update function) where it has one, else the class's own; sections the
rule's docstring lacks (a wrapper's References, Notes) come from the class's.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from .plain_math import plain_math, plain_text

__all__ = ["SEED_NOTEBOOKS", "Card", "card", "summaries"]

#: which seed notebook (/work/shared/seeds, see its README) shows which optimizer: what the
#: notebooks teach is not something a rule's docstring can know
SEED_NOTEBOOKS = {
    "sgd": "000 (CIFAR-10 LeNet), 001 (a line fit, SGD vs Adam), 002 (FashionMNIST MLP), "
    "003 (checkpoints), 004 (MNIST MLP: momentum, weight decay, dampening, Nesterov)",
    "adam": "001 (a line fit, SGD vs Adam), 003 (checkpoints), 004 (MNIST MLP, its math)",
    "adagrad": "004 (MNIST MLP, its math)",
    "rmsprop": "004 (MNIST MLP, its math)",
    "adadelta": "000 (named among the common optimizers)",
}
NOT_IN_SEEDS = "none: beyond the seed notebooks"
_SECTIONS = ("Args", "Returns", "Example", "References", "Notes")


@dataclass(frozen=True)
class Card:
    """One optimizer's card: every field is plain text."""

    name: str  # registry name
    qualname: str  # e.g. ``optimlab.optim.adam.Adam``
    summary: str
    symbols: str  # the sentence naming the symbols, above the math
    update: tuple[str, ...]  # the update rule, one equation a line
    defaults: str
    references: str
    notes: str
    seeds: str

    def render(self, width: int = 100) -> str:
        """The card as the terminal shows it."""

        def block(title: str, text: str) -> list[str]:
            if not text:
                return []
            wrapped = [textwrap.fill(p, width, initial_indent="  ", subsequent_indent="  ")
                       for p in text.split("\n\n")]
            return ["", title, *wrapped]

        lines = [f"{self.name} — {self.qualname}", self.summary]
        if self.update:
            lines += block("Update rule", self.symbols) or ["", "Update rule"]
            lines += [f"    {eq}" for eq in self.update]
        lines += block("Defaults", self.defaults)
        lines += block("Paper", self.references)
        lines += block("Where the implementation deviates from the paper", self.notes)
        lines += block("Seed notebook", self.seeds)
        return "\n".join(lines)


def _sections(doc: str) -> dict[str, str]:
    """A Google-style docstring cut into its body (``""``) and named sections."""
    out: dict[str, list[str]] = {"": []}
    current = ""
    for line in doc.splitlines():
        name = line.strip().rstrip(":")
        if line.strip().endswith(":") and not line.startswith(" ") and name in _SECTIONS:
            current = name
            out[current] = []
        else:
            out[current].append(line)
    return {k: textwrap.dedent("\n".join(v)).strip() for k, v in out.items()}


def _math_block(body: str) -> tuple[str, str, str]:
    """(text before the ``.. math::`` block, the block's LaTeX, text after it)."""
    lines = body.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == ".. math::":
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and (
                not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
            ):
                j += 1
            return "\n".join(lines[:i]), "\n".join(lines[i + 1 : j]), "\n".join(lines[j:])
    return body, "", ""


def _paragraphs(text: str) -> str:
    """Docstring prose re-flowed: paragraphs joined into single lines, math made plain."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "\n\n".join(plain_text(p) for p in paragraphs)


def _defaults(cls: type) -> str:
    parts = []
    for p in inspect.signature(cls).parameters.values():
        if p.name == "params" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return ", ".join(parts)


def _source(cls: type) -> Any:
    """The object whose docstring is the card: the class's update rule, else the class."""
    rule = getattr(cls, "rule", None)
    return rule if callable(rule) else cls


def _registry() -> dict[str, type]:
    from . import _REGISTRY  # the registry imports the optimizers; this module is leaf-level

    return _REGISTRY


def _unknown(name: object) -> Exception:
    from . import UnknownOptimizer, available

    return UnknownOptimizer(f"unknown optimizer {name!r}; valid: {', '.join(available())}")


def card(name: str) -> Card:
    """The card of the optimizer registered as ``name``; ``UnknownOptimizer`` (a ``UserError``,
    listing the valid names) for any other name."""
    cls = _registry().get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise _unknown(name)
    sections = _sections(inspect.getdoc(_source(cls)) or "")
    for key, text in _sections(inspect.getdoc(cls) or "").items():  # what the rule lacks
        if key and not sections.get(key):
            sections[key] = text
    summary, _, body = sections[""].partition("\n")
    if "rule" not in cls.__dict__ or getattr(cls, "shares_rule", False):  # AdamW, Muon+AdamW
        summary = (inspect.getdoc(cls) or summary).partition("\n")[0]
    before, latex, _ = _math_block(body)
    return Card(
        name=name.lower(),
        qualname=f"{cls.__module__}.{cls.__qualname__}",
        summary=plain_text(summary.strip()),
        symbols=_paragraphs(before),
        update=tuple(plain_math(latex)),
        defaults=_defaults(cls),
        references=_paragraphs(sections.get("References", "")),
        notes=_paragraphs(sections.get("Notes", "")),
        seeds=SEED_NOTEBOOKS.get(name.lower(), NOT_IN_SEEDS),
    )


def summaries() -> list[tuple[str, str]]:
    """(name, one-line summary) for every registered optimizer, sorted by name."""
    return [(name, card(name).summary) for name in sorted(_registry())]

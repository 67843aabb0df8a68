"""``optimlab list``: the optimizers, schedulers, datasets and models, with their defaults."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

SECTIONS = ("optimizers", "schedulers", "datasets", "models")


def add_parser(sub: Any) -> None:
    """Register ``list`` on the sub-command parser ``sub``."""
    p = sub.add_parser("list", help="optimizers, schedulers, datasets and models, with defaults",
                       description="Everything --optimizer, --scheduler, --dataset and --model "
                       "accept, read from the registries, with each one's default values.")
    p.add_argument("what", nargs="?", choices=SECTIONS, help="only this section")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Print the catalog (or one section of it)."""
    from optimlab.lab import catalog
    from optimlab.lab.spec import format_value

    sections = {
        "optimizers": catalog.optimizers, "schedulers": catalog.schedulers,
        "datasets": catalog.datasets, "models": catalog.models,
    }
    chosen = [args.what] if args.what else list(SECTIONS)
    if args.json:
        out: dict[str, list[Any]] = {
            s: [{"name": e.name, "defaults": {k: format_value(v) for k, v in e.defaults.items()},
                 "note": e.note} for e in sections[s]()] for s in chosen}
        if "optimizers" in chosen:
            out["torch_optimizers"] = catalog.torch_optimizers()
        print(json.dumps(out, indent=2))
        return 0
    usage = {
        "optimizers": "--optimizer NAME or 'NAME:key=value,...'",
        "schedulers": "--scheduler 'NAME:key=value,...'",
        "datasets": "--dataset NAME", "models": "--model NAME",
    }
    for i, section in enumerate(chosen):
        entries = sections[section]()
        print(f"{'' if i == 0 else chr(10)}{section} ({usage[section]}):")
        width = max(len(e.name) for e in entries)
        for e in entries:
            text = ", ".join(f"{k}={v if v == catalog.REQUIRED else format_value(v)}"
                             for k, v in e.defaults.items())
            if e.note and (not text or section == "schedulers" and e.note.startswith("=")):
                text = e.note
            print(_wrap(f"  {e.name:<{width}}  ", text or "no arguments"))
        if section == "optimizers":
            print(_wrap("  ", "torch.NAME for torch.optim's own class: "
                        + ", ".join(catalog.torch_optimizers())))
            print(_wrap("  ", "sam(INNER):key=value,... and lookahead(INNER):key=value,... wrap "
                        "one optimizer above or a torch.NAME (sam(sgd):rho=0.05,lr=0.1, "
                        "lookahead(adam):k=5,alpha=0.5): the wrapper's own keys go to it, the "
                        "rest to INNER. muon is Muon on the model's hidden weight matrices and "
                        "AdamW on the rest (as muon_adamw; adamw_lr=... sets AdamW's lr)."))
    return 0


def _wrap(prefix: str, text: str, width: int = 100) -> str:
    return textwrap.fill(text, width=width, initial_indent=prefix,
                         subsequent_indent=" " * len(prefix), break_on_hyphens=False)

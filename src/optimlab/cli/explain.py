"""``optimlab explain [NAME]``: an optimizer's card, read from its update rule's docstring."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``explain`` on the sub-command parser ``sub``."""
    p = sub.add_parser(
        "explain", help="an optimizer's update rule, defaults, paper and deviations",
        description="Print NAME's card: the update rule in plain-text math, its defaults, the "
        "paper, where torch or the reference implementation deviates from the paper, and the "
        "seed notebook that covers it, all from the rule's docstring. Without NAME, list the "
        "optimizers with a one-line summary each.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a registered optimizer name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Print one card, or the list of optimizers."""
    from optimlab.errors import UserError
    from optimlab.optim import UnknownOptimizer
    from optimlab.optim.cards import card, summaries

    if args.name is None:
        rows = summaries()
        if args.json:
            print(json.dumps([{"name": n, "summary": s} for n, s in rows], indent=2))
            return 0
        width = max(len(n) for n, _ in rows)
        for name, summary in rows:
            print(f"{name:<{width}}  {summary}")
        print("\n`optimlab explain NAME` for one optimizer's update rule, defaults and paper.")
        return 0
    try:
        found = card(args.name)
    except UnknownOptimizer as e:  # the library's ValueError is the user's mistake here
        raise UserError(str(e)) from None
    print(json.dumps(dataclasses.asdict(found), indent=2) if args.json else found.render())
    return 0

"""``optimlab report``: plots and report.html for runs from the store."""

from __future__ import annotations

import argparse
from typing import Any

from optimlab.cli.common import add_store_and_debug


def add_parser(sub: Any) -> None:
    """Register ``report`` on the sub-command parser ``sub``."""
    rep = sub.add_parser("report", help="plots and report.html for runs from the store")
    rep.add_argument("ids", type=int, nargs="+", metavar="ID", help="run ids (runs list)")
    rep.add_argument("--out", required=True, metavar="DIR")
    add_store_and_debug(rep)


def run(args: argparse.Namespace) -> int:
    """Write the report for the given run ids."""
    from optimlab.lab import report_from_store

    path = report_from_store(args.store, args.ids, args.out)
    print(f"report: {path}")
    return 0

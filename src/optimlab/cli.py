"""Command-line entry point (placeholder until the lab lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print("optimlab: nothing here yet", args)
    return 0

"""Pieces every sub-command's parser shares."""

from __future__ import annotations

import argparse

DEFAULT_STORE = "runs/optimlab.sqlite"


def add_store_and_debug(p: argparse.ArgumentParser) -> None:
    """``--store PATH`` (the run store) and ``--debug`` (tracebacks) on a sub-command."""
    p.add_argument("--store", default=DEFAULT_STORE, metavar="PATH")
    p.add_argument("--debug", action="store_true", help="show tracebacks")

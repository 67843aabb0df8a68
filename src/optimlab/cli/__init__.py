"""Command line: ``optimlab COMMAND``, one module per command in this package.

A thin layer: parse, call the library, print. Exit status 0 on success, 2 for a user
mistake (one line ``optimlab: error: …`` on stderr), 1 for a bug (traceback with ``--debug``),
130 when interrupted with Ctrl-C (a comparison can be continued with ``--resume``). When the
reader of the output goes away (``optimlab runs list | head -1``) the command stops quietly with
status 141, as a Unix tool killed by SIGPIPE does.

Each module named in :data:`COMMANDS` has ``add_parser(sub)``, which registers its sub-command
(and imports nothing heavy), and ``run(args) -> int``. Adding a command is one module and one
name here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from types import ModuleType
from typing import NoReturn

from optimlab.errors import UserError

#: the sub-command modules, in the order ``optimlab --help`` lists them
COMMANDS = ("compare", "tune", "runs", "report", "list", "explain", "landscape", "schedule",
            "lr-find")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``optimlab: error: …`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"optimlab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``optimlab`` parser with every command in :data:`COMMANDS`."""
    from optimlab import __version__
    from optimlab.cli.compare import EPILOG

    parser = _Parser(prog="optimlab", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="A lab for gradient-based optimizers in PyTorch.")
    parser.add_argument("--version", action="version", version=f"optimlab {__version__}")
    parser.add_argument("--debug", dest="debug_top", action="store_true",
                        help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


#: commands whose module is named otherwise (a module ``list`` would shadow the builtin)
_MODULES = {"list": "catalog", "lr-find": "lr_find"}


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"optimlab.cli.{_MODULES.get(name, name)}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = _command(args.command).run
    try:
        code = command(args)
        sys.stdout.flush()  # a reader that has gone shows here, not in Python's flush at exit
        return code
    except UserError as e:
        print(f"optimlab: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optimlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except Exception as e:
        debug = getattr(args, "debug", False) or args.debug_top
        if debug:
            traceback.print_exc()
        print(f"optimlab: internal error (a bug, not your input): {type(e).__name__}: {e}"
              + ("" if debug else "; rerun with --debug for the traceback"),
              file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """The reader of stdout has gone: send what is still buffered, and Python's flush at exit,
    to /dev/null instead of raising a second BrokenPipeError there."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in a test)
        pass
    finally:
        os.close(devnull)

"""Command line: ``optimlab compare``, ``optimlab runs list|show``, ``optimlab report``.

A thin layer: parse, call :mod:`optimlab.lab`, print. Exit status 0 on success, 2 for a user
mistake (one line ``optimlab: error: …`` on stderr), 1 for a bug (traceback with ``--debug``),
130 when interrupted with Ctrl-C (the comparison can be continued with ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, NoReturn

from optimlab.errors import UserError

EPILOG = """examples:
  optimlab compare                                  # the default: 9 optimizers on digits
  optimlab compare --optimizer sgd:lr=0.01,momentum=0.9,nesterov=true \\
                   --optimizer adam:lr=1e-3,betas=(0.9,0.99) --epochs 20
  optimlab compare --optimizer adam --optimizer torch.Adam --epochs 5   # ours vs torch's
  optimlab compare --scheduler steplr:step_size=10,gamma=0.1 --seeds 3
  optimlab compare --config lab.toml --epochs 10    # flags override the file
  optimlab compare --resume runs/20260101-120000-compare
  optimlab runs list --json
  optimlab runs show 3
  optimlab report 1 2 3 --out runs/my-report
"""

COMPARE_FLAGS = ("dataset", "model", "optimizer", "scheduler", "epochs", "batch_size", "seed",
                 "seeds", "val_every", "patience", "min_delta", "device", "data_dir",
                 "checkpoint_every", "threads")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``optimlab: error: …`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"optimlab: error: {message} (see `{self.prog} --help`)\n")


def _add_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare optimizers on one model and dataset",
                       description="Train the same model from the same initial weights on the "
                       "same batches with each optimizer; print a table and write results.json, "
                       "history.csv, plots and report.html.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="digits (default), line, mnist, fashion-mnist, cifar10")
    p.add_argument("--model", help="mlp (default), linear, mlp512, lenet, cnn")
    p.add_argument("--optimizer", action="append", metavar="SPEC",
                   help="name or name:key=value,... (repeatable), e.g. sgd:lr=0.1,momentum=0.9;"
                   " torch.Name for torch.optim's class")
    p.add_argument("--scheduler", metavar="SPEC", help="e.g. steplr:step_size=30,gamma=0.1")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, metavar="N", help="run seeds seed…seed+N-1")
    p.add_argument("--val-every", type=int, metavar="K", help="validate every K epochs")
    p.add_argument("--patience", type=int, help="early stopping after this many validations")
    p.add_argument("--min-delta", type=float, help="minimum val-loss improvement")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data-dir", help="folder with dataset files (mnist, cifar10)")
    p.add_argument("--checkpoint-every", type=int, metavar="K",
                   help="checkpoint every K epochs (default 5)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default 1)")
    p.add_argument("--config", metavar="FILE.toml", help="TOML with the same keys as the flags")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<time>-compare)")
    p.add_argument("--store", metavar="PATH", help="run store (default runs/optimlab.sqlite)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted comparison in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress, only table and report")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optimlab", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="A lab for gradient-based optimizers in PyTorch.")
    parser.add_argument("--debug", dest="debug_top", action="store_true",
                        help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_compare(sub)
    runs = sub.add_parser("runs", help="list or show runs in the run store")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="list|show", required=True)
    lst = runs_sub.add_parser("list", help="all runs, oldest first")
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    show = runs_sub.add_parser("show", help="one run with its per-epoch metrics")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print JSON")
    rep = sub.add_parser("report", help="plots and report.html for runs from the store")
    rep.add_argument("ids", type=int, nargs="+", metavar="ID", help="run ids (runs list)")
    rep.add_argument("--out", required=True, metavar="DIR")
    for p in (lst, show, rep):
        p.add_argument("--store", default="runs/optimlab.sqlite", metavar="PATH")
        p.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _compare(args: argparse.Namespace) -> int:
    from optimlab.lab import load_config, resume_comparison, run_comparison
    from optimlab.lab.results import format_table

    overrides = {k: getattr(args, k) for k in COMPARE_FLAGS if getattr(args, k) is not None}
    log = None if args.quiet else (lambda line: print(line, flush=True))
    progress = not args.quiet
    if args.resume:
        given = sorted(overrides) + (["config"] if args.config else []) + (
            ["out"] if args.out else [])
        if given:
            raise UserError(f"--resume uses the config saved in {args.resume}; drop "
                            + ", ".join(f"--{k.replace('_', '-')}" for k in given))
        result = resume_comparison(args.resume, store_path=args.store, progress=progress,
                                   log=log)
    else:
        config = load_config(args.config, overrides)
        store = args.store if args.store is not None else "runs/optimlab.sqlite"
        result = run_comparison(config, out_dir=args.out, store_path=store, progress=progress,
                                log=log)
    print()
    print(format_table(result.rows))
    print()
    print(f"report: {result.report_path}")
    if result.interrupted:
        print(f"optimlab: interrupted; continue with: optimlab compare --resume "
              f"{result.out_dir}", file=sys.stderr)
        return 130
    return 0


def _runs(args: argparse.Namespace) -> int:
    from optimlab.lab import RunStore

    with RunStore(args.store, create=False) as store:
        if args.runs_command == "list":
            rows = store.list_runs()
            if args.json:
                print(json.dumps(rows, indent=2))
                return 0
            print(f"{'id':>4}  {'exp':>4}  {'status':<13} {'seed':>4}  {'test acc':>8}  name")
            for r in rows:
                acc = "-" if r["test_accuracy"] is None else f"{100 * r['test_accuracy']:.1f}%"
                print(f"{r['id']:>4}  {r['experiment']:>4}  {r['status']:<13} {r['seed']:>4}  "
                      f"{acc:>8}  {r['name']}")
            return 0
        run = store.get_run(args.id)
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    for key in ("id", "experiment_id", "name", "optimizer", "hparams", "seed", "status", "pid",
                "host", "wall_seconds", "config", "result"):
        value = run[key]
        if key == "result" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "confusion_matrix"}
        print(f"{key:>14}: {json.dumps(value) if isinstance(value, dict) else value}")
    h = run["history"]
    print(f"\n{'epoch':>5}  {'train loss':>10}  {'val loss':>10}  {'val acc':>7}  {'lr':>9}")
    for i, e in enumerate(h["epoch"]):
        cells = [h["train_loss"][i], h["val_loss"][i], h["val_accuracy"][i], h["lr"][i]]
        tl, vl, va, lr = ("-" if c is None else c for c in cells)
        print(f"{e:>5}  {_num(tl):>10}  {_num(vl):>10}  "
              f"{'-' if va == '-' else f'{100 * float(va):.1f}%':>7}  {_num(lr):>9}")
    return 0


def _num(x: Any) -> str:
    return x if isinstance(x, str) else f"{x:.4g}"


def _report(args: argparse.Namespace) -> int:
    from optimlab.lab import report_from_store

    path = report_from_store(args.store, args.ids, args.out)
    print(f"report: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = {"compare": _compare, "runs": _runs, "report": _report}[args.command]
    try:
        return command(args)
    except UserError as e:
        print(f"optimlab: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optimlab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        debug = getattr(args, "debug", False) or args.debug_top
        if debug:
            traceback.print_exc()
        print(f"optimlab: internal error (a bug, not your input): {type(e).__name__}: {e}"
              + ("" if debug else "; rerun with --debug for the traceback"),
              file=sys.stderr)
        return 1

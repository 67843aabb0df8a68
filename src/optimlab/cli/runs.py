"""``optimlab runs list|show``: the run store, read back."""

from __future__ import annotations

import argparse
import json
from typing import Any

from optimlab.cli.common import add_store_and_debug

MISSING = "—"  # as in the results table


def add_parser(sub: Any) -> None:
    """Register ``runs list`` and ``runs show`` on the sub-command parser ``sub``."""
    runs = sub.add_parser("runs", help="list or show runs in the run store")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="list|show", required=True)
    lst = runs_sub.add_parser("list", help="all runs, oldest first")
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    show = runs_sub.add_parser("show", help="one run with its per-epoch metrics")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print JSON")
    for p in (lst, show):
        add_store_and_debug(p)


def run(args: argparse.Namespace) -> int:
    """List the store's runs or show one."""
    from optimlab.lab import RunStore
    from optimlab.lab.results import format_hparams

    with RunStore(args.store, read_only=True) as store:
        if args.runs_command == "list":
            rows = store.list_runs()
            if args.json:
                print(json.dumps(rows, indent=2))
                return 0
            print(f"{'id':>4}  {'exp':>4}  {'status':<13} {'seed':>4}  {'test acc':>8}  name")
            for r in rows:  # a diverged run's test accuracy is of non-finite weights: none
                acc = MISSING if r["test_accuracy"] is None or r["status"] == "diverged" else (
                    f"{100 * r['test_accuracy']:.1f}%")
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
            if run["status"] == "diverged":  # measured on non-finite weights
                value = {k: v for k, v in value.items() if not k.startswith("test_")}
        if key == "hparams":  # as a spec writes them: lr=1e+10, not 10000000000.0
            value = format_hparams(value)
        print(f"{key:>14}: {json.dumps(value) if isinstance(value, dict) else value}")
    h = run["history"]
    print(f"\n{'epoch':>5}  {'train loss':>10}  {'val loss':>10}  {'val acc':>7}  {'lr':>9}")
    for i, e in enumerate(h["epoch"]):
        cells = [h["train_loss"][i], h["val_loss"][i], h["val_accuracy"][i], h["lr"][i]]
        tl, vl, va, lr = (MISSING if c is None else c for c in cells)
        print(f"{e:>5}  {_num(tl):>10}  {_num(vl):>10}  "
              f"{MISSING if va == MISSING else f'{100 * float(va):.1f}%':>7}  {_num(lr):>9}")
    return 0


def _num(x: Any) -> str:
    return x if isinstance(x, str) else f"{x:.4g}"

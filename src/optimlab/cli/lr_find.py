"""``optimlab lr-find``: the LR range test (Smith 2015) on one model, dataset and optimizer."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from optimlab.errors import UserError

EPILOG = """examples:
  optimlab lr-find                                   # sgd:momentum=0.9 on digits / mlp
  optimlab lr-find --optimizer adam --min-lr 1e-6 --max-lr 1 --steps 100 --out runs/lrf
  optimlab compare --optimizer adam:lr=find --optimizer sgd:lr=find,momentum=0.9
"""


def add_parser(sub: Any) -> None:
    """Register ``lr-find`` on the sub-command parser ``sub``."""
    p = sub.add_parser("lr-find", help="find a learning rate with the LR range test",
                       description="Train for --steps batches while the learning rate grows "
                       "exponentially from --min-lr to --max-lr; stop when the smoothed loss "
                       "exceeds 5x its lowest value. Prints the suggested lr (fastai's "
                       "min-loss/10, then the steepest descent of the smoothed loss), "
                       "writes lr_find.json and lr_find.png. Nothing else is kept.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", metavar="SPEC", default="sgd:momentum=0.9",
                   help="optimizer spec without lr (default sgd:momentum=0.9)")
    p.add_argument("--dataset", default="digits", help="digits (default), line, mnist, …")
    p.add_argument("--model", default="mlp", help="mlp (default), linear, mlp512, lenet, cnn")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--min-lr", type=float, default=1e-7, help="first lr (default 1e-7)")
    p.add_argument("--max-lr", type=float, default=10.0, help="last lr (default 10)")
    p.add_argument("--steps", type=int, default=100, help="batches (default 100)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and batch order")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--data-dir", help="folder with dataset files (mnist, cifar10)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<time>-lr-find)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Run the range test; print the suggestions and where the files are."""
    from optimlab.lab.compare import resolve_device
    from optimlab.lab.learning_rates import find_lr, write_lr_find

    out = Path(args.out) if args.out else Path("runs") / (
        time.strftime("%Y%m%d-%H%M%S") + "-lr-find")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    result = find_lr(args.optimizer, dataset=args.dataset, model=args.model,
                     batch_size=args.batch_size, seed=args.seed, data_dir=args.data_dir,
                     device=resolve_device(args.device), min_lr=args.min_lr,
                     max_lr=args.max_lr, steps=args.steps)
    stop = (f"stopped at step {len(result.lrs)} of {args.steps}: the smoothed loss passed 5x "
            "its lowest" if result.stopped_early else f"ran all {args.steps} steps")
    print(f"lr range test: {args.optimizer} on {args.dataset} / {args.model}, lr "
          f"{args.min_lr:g} → {args.max_lr:g}; {stop}")
    if result.suggestion is None:
        print(f"no suggestion: {len(result.lrs)} steps are too few (17 needed); lower "
              "--min-lr or raise --steps")
    else:
        print(f"suggested lr: {result.min_loss_div10:.3g}  (lowest smoothed loss's lr / 10)")
        print(f"steepest:     {result.steepest:.3g}  (steepest descent of the smoothed loss; "
              "bolder, often too high)")
    for path in write_lr_find(result, out):
        print(f"wrote {path}")
    return 0

"""``optimlab schedule``: the learning rate a schedule gives each epoch (or batch), no training."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optimlab.errors import UserError

EPILOG = """examples:
  optimlab schedule warmup_cosine:warmup=5,min_lr=1e-5 --epochs 30 --lr 0.1
  optimlab schedule wsd:warmup=50,decay=0.2 --epochs 10 --steps-per-epoch 17 --out wsd.png
  optimlab schedule "linearlr:start_factor=0.1,total_iters=5 then cosineannealinglr" --epochs 30
"""


def add_parser(sub: Any) -> None:
    """Register ``schedule`` on the sub-command parser ``sub``."""
    p = sub.add_parser("schedule", help="print (and draw) a learning-rate schedule",
                       description="Print the learning rate a schedule spec gives each epoch "
                       "(or each batch with --steps-per-epoch) of a run, without training; "
                       "with --out, draw it as a PNG. Specs: a torch scheduler "
                       "(steplr:step_size=10), a recipe (warmup_cosine, warmup_linear, wsd) or "
                       "a chain 'A then B'.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="schedule spec, e.g. warmup_cosine:warmup=5")
    p.add_argument("--epochs", type=int, required=True, help="the run's epochs")
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="step the schedule per batch, N batches an epoch (lengths in batches)")
    p.add_argument("--lr", type=float, default=0.1, help="the optimizer's lr (default 0.1)")
    p.add_argument("--out", metavar="FILE.png", help="also draw the schedule into this PNG")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Print the lr per epoch or step; write the plot when asked."""
    from optimlab.lab.learning_rates import format_preview, preview_schedule, schedule_png

    out = Path(args.out) if args.out else None
    if out is not None and (out.suffix.lower() != ".png" or out.is_dir()):
        raise UserError(f"--out {args.out}: expected a .png file path")
    preview = preview_schedule(args.spec, epochs=args.epochs,
                               steps_per_epoch=args.steps_per_epoch, lr=args.lr)
    print(format_preview(preview))
    if out is not None:
        from optimlab.atomic import atomic_write_bytes

        atomic_write_bytes(out, schedule_png(preview))
        print(f"plot: {out}")
    return 0

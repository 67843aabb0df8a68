"""``optimlab compare``: the same model, data and batches under each optimizer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from optimlab.errors import UserError

EPILOG = """examples:
  optimlab compare                                  # the default: 9 optimizers on digits
  optimlab compare --optimizer 'sgd:lr=0.01,momentum=0.9,nesterov=true' \\
                   --optimizer 'adam:lr=1e-3,betas=(0.9,0.99)' --epochs 20
  optimlab compare --optimizer adam --optimizer torch.Adam --epochs 5   # ours vs torch's
  optimlab compare --optimizer 'torch.LBFGS:lr=0.5,max_iter=4' --epochs 5
  optimlab compare --scheduler 'steplr:step_size=10,gamma=0.1' --seeds 3
  optimlab compare --out runs/mine --force          # empty runs/mine (a comparison) first
  optimlab compare --config lab.toml --epochs 10    # flags override the file
  optimlab compare --resume runs/20260101-120000-compare
  optimlab list                                     # every name with its defaults
  optimlab runs list --json
  optimlab runs show 3
  optimlab report 1 2 3 --out runs/my-report
"""

COMPARE_FLAGS = ("dataset", "model", "optimizer", "scheduler", "schedule_every", "epochs",
                 "batch_size", "seed", "seeds", "val_every", "patience", "min_delta", "device",
                 "data_dir", "checkpoint_every", "threads")


def add_parser(sub: Any) -> None:
    """Register ``compare`` on the sub-command parser ``sub``."""
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
    p.add_argument("--scheduler", metavar="SPEC",
                   help="e.g. steplr:step_size=30,gamma=0.1, warmup_cosine:warmup=5, "
                   "'linearlr:total_iters=5 then cosine' (see optimlab schedule)")
    p.add_argument("--schedule-every", choices=("epoch", "step"),
                   help="step the scheduler every epoch (default) or every batch")
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
    p.add_argument("--out", metavar="DIR", help="output folder, new or empty (default: a new "
                   "runs/<time>-compare)")
    p.add_argument("--force", action="store_true", help="empty --out first when it holds an "
                   "earlier comparison")
    p.add_argument("--store", metavar="PATH", help="run store (default runs/optimlab.sqlite)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted comparison in DIR")
    p.add_argument("--telemetry", action="store_true", help="record per-layer gradient, "
                   "parameter and update norms at each epoch's last step (results.json, report)")
    p.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard event files, one "
                   "sub-folder per run: DIR/<run>/seed<s> (open with tensorboard --logdir DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress, only table and report")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Run the comparison the flags describe; print the table and the report path."""
    from optimlab.lab import load_config, resume_comparison, run_comparison
    from optimlab.lab.results import format_table

    overrides = {k: getattr(args, k) for k in COMPARE_FLAGS if getattr(args, k) is not None}
    log = None if args.quiet else (lambda line: print(line, flush=True))
    progress = not args.quiet
    if args.resume:
        given = sorted(overrides) + (["config"] if args.config else []) + (
            ["out"] if args.out else []) + (["force"] if args.force else [])
        if given:
            raise UserError(f"--resume uses the config saved in {args.resume}; drop "
                            + ", ".join(f"--{k.replace('_', '-')}" for k in given))
        result = resume_comparison(args.resume, store_path=args.store, progress=progress,
                                   log=log, telemetry=args.telemetry,
                                   tensorboard=args.tensorboard)
    else:
        config = load_config(args.config, overrides)
        store = args.store if args.store is not None else "runs/optimlab.sqlite"
        result = run_comparison(config, out_dir=args.out, store_path=store, force=args.force,
                                progress=progress, log=log, telemetry=args.telemetry,
                                tensorboard=args.tensorboard)
    print()
    print(format_table(result.rows))
    print()
    print(f"report: {result.report_path}")
    if result.interrupted:
        print(f"optimlab: interrupted; continue with: optimlab compare --resume "
              f"{result.out_dir}", file=sys.stderr)
        return 130
    return 0

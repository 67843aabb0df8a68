"""``optimlab tune``: each optimizer tuned on an equal budget, rerun on other seeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from optimlab.errors import UserError

EPILOG = """examples:
  optimlab tune                                   # the default compare's optimizers, lr tuned
  optimlab tune --optimizer "sgd:lr=log(1e-4,1),momentum=[0,0.9,0.99]" \\
                --optimizer "adam:lr=log(1e-5,1e-1),betas=(uniform(0.8,0.99),0.999)" \\
                --trials 20 --sampler tpe --pruner median --seeds 5
  optimlab tune --optimizer sgd --optimizer adam --sampler grid --trials 8   # log lr grid
  optimlab tune --target val_accuracy=0.95 --workers 2
  optimlab tune --backend ray --ray-address 127.0.0.1:6379
  optimlab tune --optimizer "adam:lr=find" --scheduler warmup_cosine:warmup=2 \
                --schedule-every step   # lr searched over a decade each side of the test's
  optimlab tune --telemetry --tensorboard runs/tb --out runs/mine --force
  optimlab tune --resume runs/20260101-120000-tune
"""

TUNE_FLAGS = ("optimizer", "dataset", "model", "epochs", "batch_size", "trials", "sampler",
              "pruner", "metric", "seeds", "seed", "target", "workers", "backend",
              "ray_address", "device", "data_dir", "threads", "scheduler", "schedule_every",
              "tensorboard")
RUN_FLAGS = ("workers", "backend", "ray_address")


def add_parser(sub: Any) -> None:
    """Register ``tune`` on the sub-command parser ``sub``."""
    p = sub.add_parser("tune", help="tune each optimizer on an equal budget, rerun the best",
                       description="Tune every optimizer with the same number of trials "
                       "(Optuna), select by the validation metric, rerun each best "
                       "configuration on other seeds; write results.json, trials.csv, plots "
                       "and report.html.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", action="append", metavar="SPEC",
                   help="compare's spec where a value may be log(a,b), uniform(a,b), "
                   "int(a,b) or [v1,v2,...]; without any, lr is searched (repeatable)")
    p.add_argument("--dataset", help="digits (default), line, mnist, fashion-mnist, cifar10")
    p.add_argument("--model", help="mlp (default), linear, mlp512, lenet, cnn")
    p.add_argument("--epochs", type=int, help="epochs of every trial and rerun (default 30)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--trials", type=int, metavar="N", help="trials per optimizer (default 10)")
    p.add_argument("--sampler", choices=("tpe", "random", "grid", "qmc"),
                   help="Optuna sampler (default qmc)")
    p.add_argument("--pruner", choices=("none", "median", "hyperband"),
                   help="Optuna pruner (default none)")
    p.add_argument("--metric", choices=("val_loss", "val_accuracy"),
                   help="selects the best trial: last epoch's value (default val_loss)")
    p.add_argument("--seeds", type=int, metavar="S", help="reruns of each best (default 3)")
    p.add_argument("--seed", type=int, help="the search's seed (default 0)")
    p.add_argument("--target", metavar="METRIC=VALUE",
                   help="time to target per rerun, e.g. val_accuracy=0.95")
    p.add_argument("--no-defaults", action="store_true",
                   help="do not rerun the untuned default specs the tune covers")
    p.add_argument("--workers", type=int, metavar="W", help="trials at once (default: CPUs)")
    p.add_argument("--backend", choices=("local", "ray"), help="local processes or Ray")
    p.add_argument("--ray-address", metavar="ADDR", help="existing Ray cluster HOST:PORT")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default cpu")
    p.add_argument("--data-dir", help="folder with dataset files (mnist, cifar10)")
    p.add_argument("--threads", type=int, help="torch CPU threads in all (default 1)")
    p.add_argument("--scheduler", metavar="SPEC",
                   help="one lr scheduler for every trial and rerun, fixed (not searched): "
                   "a torch scheduler, a recipe (warmup_cosine:warmup=5) or 'A then B'")
    p.add_argument("--schedule-every", choices=("epoch", "step"),
                   help="step the scheduler every epoch (default) or every batch")
    p.add_argument("--telemetry", action="store_true", help="record per-layer gradient, "
                   "parameter and update norms in each run's history.telemetry")
    p.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard event files: "
                   "DIR/trials/<opt>/trial<k>, DIR/reruns/<opt>/seed<s>, DIR/defaults/…")
    p.add_argument("--config", metavar="FILE.toml", help="TOML with the same keys as the flags")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<time>-tune)")
    p.add_argument("--force", action="store_true", help="empty --out first when it holds a "
                   "previous tune (never other files)")
    p.add_argument("--store", metavar="PATH", help="run store (default runs/optimlab.sqlite)")
    p.add_argument("--resume", metavar="DIR", help="finish the interrupted tune in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Run the tune the flags describe; print the table and the report path."""
    from optimlab.lab.tune import load_tune_config, resume_tune, run_tune

    overrides = {k: getattr(args, k) for k in TUNE_FLAGS if getattr(args, k) is not None}
    if args.no_defaults:
        overrides["defaults"] = False
    if args.telemetry:
        overrides["telemetry"] = True
    log = None if args.quiet else (lambda line: print(line, flush=True))
    if args.resume:
        given = sorted(set(overrides) - set(RUN_FLAGS)) + (["config"] if args.config else []) \
            + (["out"] if args.out else []) + (["force"] if args.force else [])
        if given:
            raise UserError(f"--resume uses the config saved in {args.resume}; drop "
                            + ", ".join(f"--{k.replace('_', '-')}" for k in given))
        result = resume_tune(args.resume, store_path=args.store,
                             overrides={k: overrides[k] for k in RUN_FLAGS if k in overrides},
                             log=log)
    else:
        from optimlab.lab.tune.runner import default_out_dir

        config = load_tune_config(args.config, overrides)
        store = args.store if args.store is not None else "runs/optimlab.sqlite"
        out = args.out if args.out is not None else default_out_dir()
        try:
            result = run_tune(config, out_dir=out, store_path=store, force=args.force,
                              log=log)
        except KeyboardInterrupt:
            if (Path(out) / "tune.json").is_file():
                print(f"optimlab: interrupted; continue with: optimlab tune --resume {out}",
                      file=sys.stderr)
                return 130
            raise
    print()
    print(result.table())
    print()
    print(f"report: {result.report_path}")
    return 0

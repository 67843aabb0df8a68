"""``optimlab landscape``: optimizers on a 2-D test function, as a contour plot and a GIF."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """functions: rosenbrock (default), beale, rastrigin, himmelblau, saddle, quadratic

examples:
  optimlab landscape                                   # the default suite on Rosenbrock
  optimlab landscape --function himmelblau --optimizer sgd:lr=0.01 --optimizer adam:lr=0.1
  optimlab landscape --function quadratic --optimizer sgd:lr=0.03,momentum=0.9 \\
                     --optimizer torch.SGD:lr=0.03,momentum=0.9 --steps 200
  optimlab landscape --function rastrigin --noise 5 --seed 1 --start 2.5,-3
"""


def add_parser(sub: Any) -> None:
    """Register ``landscape`` on the sub-command parser ``sub``."""
    p = sub.add_parser("landscape", help="optimizers on a 2-D test function (plot, GIF, page)",
                       description="Run each optimizer from the same point for the same number "
                       "of steps on a 2-D test function; write trajectories.json, contour.png, "
                       "animation.gif and landscape.html.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--function", default="rosenbrock", metavar="NAME",
                   help="test function (default rosenbrock)")
    p.add_argument("--optimizer", action="append", metavar="SPEC",
                   help="name or name:key=value,... (repeatable); torch.Name for torch.optim's "
                   "class (default: the compare suite with learning rates tuned for Rosenbrock)")
    p.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default 500)")
    p.add_argument("--start", metavar="X,Y", help="starting point (default: the function's)")
    p.add_argument("--noise", type=float, default=0.0, metavar="SIGMA",
                   help="standard deviation of Gaussian noise added to the gradient (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the gradient noise (default 0)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<time>-landscape)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Run the landscape the flags describe; print one line per optimizer and the page path."""
    from optimlab.lab.landscape import DEFAULT_STEPS, parse_point, run_landscape

    result = run_landscape(
        function=args.function, optimizers=args.optimizer,
        steps=DEFAULT_STEPS if args.steps is None else args.steps,
        start=None if args.start is None else parse_point(args.start),
        noise=args.noise, seed=args.seed, out_dir=args.out)
    for r in result.runs:
        x, y = r.path[-1]
        print(f"{r.name}: {r.status}, {len(r.path) - 1} steps, end ({x:.4g}, {y:.4g}), "
              f"f = {r.loss[-1]:.4g}")
    print(f"page: {result.page_path}")
    return 0

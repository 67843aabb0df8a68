"""``optimlab tune``'s speed: the default tune's wall time, trial throughput with 2 workers
against 1, Ray's per-trial overhead on a local cluster, and that compare's start-up imports
neither Optuna nor Ray.

- ``default``    ``optimlab tune`` with no arguments in a subprocess (cold start included):
                 wall and CPU seconds; the target is ≤ 60 s wall on two cores.
- ``throughput`` the same trials (2 optimizers × N trials of digits/mlp, 30 epochs, random
                 sampler, no reruns) with ``--workers 1`` and ``--workers 2``: trials per
                 second from the first to the last finished trial (steady state), and over
                 the whole call (worker start-up included). Target: 2 workers ≥ 1.6× 1.
- ``ray``        1-epoch trials run in the driver and as Ray tasks on a local Ray (one worker
                 each, so only the hand-off differs): the difference per trial is Ray's
                 overhead; Ray's start-up is printed apart.
- ``startup``    ``optimlab compare --help`` in fresh interpreters: median seconds, and the
                 heavy modules it loaded (must be none of optuna, ray, sqlalchemy).

Run::

    python benchmarks/tune.py              # everything (several minutes on two cores)
    python benchmarks/tune.py --quick      # tiny sizes: a smoke run, not numbers
    python benchmarks/tune.py --only ray   # one part: default, throughput, ray or startup
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optimlab.lab.tune import TuneConfig, run_tune

OPTIMLAB = [sys.executable, "-m", "optimlab"]


def bench_default(quick: bool) -> None:
    extra = ["--trials", "2", "--epochs", "2", "--seeds", "1"] if quick else []
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([*OPTIMLAB, "tune", "--quiet", "--out", f"{tmp}/t", "--store",
                        f"{tmp}/s.sqlite", *extra], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    label = "quick tune" if quick else "default tune"
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU (all processes), "
          f"{len(os.sched_getaffinity(0))} CPUs; target ≤ 60 s wall")


def _timed_tune(cfg: TuneConfig, out: Path) -> tuple[float, list[float]]:
    """Whole-call seconds and the time each trial line was logged."""
    stamps: list[float] = []

    def log(line: str) -> None:
        if " trial " in line:
            stamps.append(time.perf_counter())

    t0 = time.perf_counter()
    run_tune(cfg, out_dir=out, store_path=None, log=log)
    return time.perf_counter() - t0, stamps


def bench_throughput(quick: bool) -> None:
    trials, epochs = (4, 2) if quick else (16, 30)
    base = {"optimizer": ("sgd:momentum=0.9", "adam"), "trials": trials, "epochs": epochs,
            "seeds": 0, "sampler": "random", "defaults": False}
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            wall, stamps = _timed_tune(TuneConfig(**base, workers=workers),
                                       Path(tmp) / f"w{workers}")
            steady = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            rates[workers] = steady
            print(f"--workers {workers}: {steady:.2f} trials/s steady, "
                  f"{len(stamps) / wall:.2f} trials/s over the call ({wall:.1f} s, "
                  f"{len(stamps)} trials of {epochs} epochs)")
    print(f"throughput 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (target ≥ 1.6x)")


def bench_ray(quick: bool) -> None:
    trials = 5 if quick else 40
    base = {"optimizer": ("adam",), "trials": trials, "epochs": 1, "seeds": 0,
            "sampler": "random", "defaults": False, "workers": 1}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        _, local = _timed_tune(TuneConfig(**base), Path(tmp) / "local")
        t0 = time.perf_counter()
        wall, on_ray = _timed_tune(TuneConfig(**base, backend="ray"), Path(tmp) / "ray")
    per_local = (local[-1] - local[0]) / (len(local) - 1)
    per_ray = (on_ray[-1] - on_ray[0]) / (len(on_ray) - 1)
    print(f"1-epoch trial: {1e3 * per_local:.0f} ms in the driver, {1e3 * per_ray:.0f} ms as a "
          f"Ray task → Ray overhead {1e3 * (per_ray - per_local):.0f} ms per trial; "
          f"Ray start-up and first task {on_ray[0] - t0:.1f} s (whole call {wall:.1f} s)")


def bench_startup(quick: bool) -> None:
    probe = ("import sys, time; t = time.perf_counter(); from optimlab import cli; "
             "cli.build_parser().parse_args(['compare', '--help'])")
    check = ("import sys; from optimlab import cli; cli.build_parser(); "
             "import optimlab.lab, optimlab.cli.compare, optimlab.cli.tune; "
             "print(','.join(m for m in ('optuna', 'ray', 'sqlalchemy', 'matplotlib') "
             "if m in sys.modules) or 'none')")
    times = []
    for _ in range(2 if quick else 7):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", probe], stdout=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            check=True).stdout.strip()
    print(f"optimlab compare --help: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}); heavy modules loaded at start-up: {loaded}")


PARTS = {"default": bench_default, "throughput": bench_throughput, "ray": bench_ray,
         "startup": bench_startup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--only", choices=sorted(PARTS), action="append")
    args = parser.parse_args()
    for name in args.only or list(PARTS):
        PARTS[name](args.quick)


if __name__ == "__main__":
    main()

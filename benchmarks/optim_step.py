"""Median optimizer step time: optimlab.optim (eager and fused) against its reference.

For each algorithm and parameter layout, every variant gets the same parameters and gradients
and is timed step by step, round-robin, in one process (so a noisy neighbour slows all of them
alike). A "memory floor" row times one compiled pass that moves the same bytes with no
per-tensor work (:class:`MemoryFloor`): the fastest any implementation could be here.
Printed per row: the median step in ms, the ratio to the reference's for-loop, to torch's
fused (where torch has one) and to the reference's best mode, and the effective bandwidth —
the bytes the algorithm must read and write per step (parameter, gradient and state) over the
median time. The reference is torch.optim's class (loop, foreach, fused) or, for Lion and
Schedule-Free, the reference package's modes: lion-pytorch's ``Lion`` and its multi-tensor
``lion_pytorch.foreach.Lion``; schedulefree's class with ``foreach=False``/``True`` and its
closure-free ``*Reference`` class.

The one-time compile cost of ``fused=True`` is measured separately, in fresh processes: first
with an empty inductor cache (the cold cost), then again with the cache that run left behind
(what every later process pays).

    python benchmarks/optim_step.py                       # everything, a few minutes
    python benchmarks/optim_step.py --algos adam,sgd --layouts 16M --repeats 15
    python benchmarks/optim_step.py --quick               # fewer repeats, no compile runs
    python benchmarks/optim_step.py --quick --scale 1000  # a smoke run: tensors 1000x smaller
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lion_pytorch
import lion_pytorch.foreach
import schedulefree
import torch

import optimlab.optim as ours

# The one table of optimizers under test (tests/optim/optim_cases.py): names, our classes,
# torch's classes and typical hyperparameters come from there, as for the parity suite.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "optim"))
from optim_cases import ALGOS as CASES  # noqa: E402

#: (number of tensors, elements each)
LAYOUTS = {"16M": (1, 16_000_000), "160x100k": (160, 100_000), "4000x4k": (4000, 4096)}


Build = Callable[..., torch.optim.Optimizer]

#: the modes of references outside torch.optim (label → class and its keywords); torch's are
#: its loop, foreach and (where it has one) fused paths
OTHER_MODES: dict[str, dict[str, tuple[Build, dict[str, object]]]] = {
    "lion": {"ref loop": (lion_pytorch.Lion, {}),
             "ref foreach": (lion_pytorch.foreach.Lion, {})},
    **{
        name: {"ref loop": (cls, {"foreach": False}), "ref foreach": (cls, {"foreach": True}),
               "ref Reference": (reference, {})}
        for name, cls, reference in (
            ("sgd_schedulefree", schedulefree.SGDScheduleFree,
             schedulefree.SGDScheduleFreeReference),
            ("adamw_schedulefree", schedulefree.AdamWScheduleFree,
             schedulefree.AdamWScheduleFreeReference),
        )
    },
}


@dataclass(frozen=True)
class Algo:
    """One row of the table as the benchmark uses it."""

    modes: dict[str, tuple[Build, dict[str, object]]]  # the reference's, fastest last
    hparams: dict[str, object]
    n_state: int  # state tensors per parameter element


def _ready(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Schedule-Free steps only in train mode (ours and the reference)."""
    if hasattr(opt, "train"):
        opt.train()
    return opt


def _state_tensors(cls: Build, hp: dict[str, object]) -> int:
    """How many state tensors shaped like the parameter one step creates."""
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.ones(3)
    opt = _ready(cls([p], **hp))
    opt.step()
    return sum(torch.is_tensor(t) and t.shape == p.shape for t in opt.state[p].values())


def _torch_modes(cls: Build) -> dict[str, tuple[Build, dict[str, object]]]:
    modes: dict[str, tuple[Build, dict[str, object]]] = {
        "torch loop": (cls, {"foreach": False}), "torch foreach": (cls, {"foreach": True})}
    if "fused" in inspect.signature(cls).parameters:
        modes["torch fused"] = (cls, {"fused": True})
    return modes


ALGOS: dict[str, Algo] = {
    case.name: Algo(
        OTHER_MODES[case.name] if case.name in OTHER_MODES else _torch_modes(case.theirs),
        dict(case.hparams), _state_tensors(case.theirs, dict(case.hparams)),
    )
    for case in CASES
    if case.torch_api or case.name in OTHER_MODES
}


@dataclass
class Row:
    algo: str
    layout: str
    variant: str
    median_ms: float
    gbps: float


def bytes_per_step(algo: str, numel: int, itemsize: int = 4) -> int:
    """Bytes an ideal kernel moves: read+write param and each state tensor, read grad."""
    return numel * itemsize * (2 + 1 + 2 * ALGOS[algo].n_state)


def make_params(layout: str, seed: int = 0, scale: int = 1) -> list[torch.nn.Parameter]:
    count, size = LAYOUTS[layout]
    size = max(1, size // scale)
    gen = torch.Generator().manual_seed(seed)
    params = []
    for _ in range(count):
        p = torch.nn.Parameter(torch.randn(size, generator=gen))
        p.grad = torch.randn(size, generator=gen)
        params.append(p)
    return params


def variants(algo: str) -> dict[str, Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]]:
    row = ALGOS[algo]
    hp = row.hparams
    out: dict[str, Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]] = {
        label: _builder(cls, {**kw, **hp}) for label, (cls, kw) in row.modes.items()
    }
    out["memory floor"] = lambda ps: MemoryFloor(ps, row.n_state)  # type: ignore[assignment, return-value]
    out["ours default"] = lambda ps: _ready(ours.create(algo, ps, **hp))
    out["ours fused"] = lambda ps: _ready(ours.create(algo, ps, fused=True, **hp))
    return out


def _builder(cls: Build, kwargs: dict[str, object]) -> Build:
    return lambda ps: _ready(cls(ps, **kwargs))


def _is_reference(label: str) -> bool:
    return label.startswith(("torch", "ref"))


def _touch(param: torch.Tensor, grad: torch.Tensor, *states: torch.Tensor) -> None:
    param.add_(grad)
    for s in states:
        s.add_(grad)


class MemoryFloor:
    """Not an optimizer: the least any optimizer step must cost on this machine.

    One compiled pass over the layout's elements laid out as one flat buffer per tensor
    kind, reading parameter, gradient and each state tensor and writing parameter and each
    state (one add each): the bytes of :func:`bytes_per_step`, at the memory bandwidth, with
    no per-tensor overhead. No implementation can beat it once the data outgrows the caches
    (every layout here is 128–448 MB), so ``torch best / floor`` bounds the possible speed-up.
    """

    def __init__(self, params: list[torch.nn.Parameter], n_state: int) -> None:
        n = sum(p.numel() for p in params)
        self.tensors = [torch.zeros(n), torch.full((n,), 1e-3)] + [
            torch.zeros(n) for _ in range(n_state)
        ]
        self.fn = torch.compile(_touch)

    def step(self) -> None:
        self.fn(*self.tensors)


def time_layout(algo: str, layout: str, repeats: int, warmup: int, scale: int = 1) -> list[Row]:
    """Median step time of every variant on one layout, timed round-robin."""
    builders = variants(algo)
    opts = {}
    for label, build in builders.items():
        params = make_params(layout, scale=scale)
        opts[label] = build(params)
        for _ in range(warmup):  # includes the compile of ours fused
            opts[label].step()
    times: dict[str, list[float]] = {label: [] for label in opts}
    for _ in range(repeats):
        for label, opt in opts.items():
            start = time.perf_counter()
            opt.step()
            times[label].append(time.perf_counter() - start)
    count, size = LAYOUTS[layout]
    nbytes = bytes_per_step(algo, count * max(1, size // scale))
    rows = []
    for label, ts in times.items():
        med = statistics.median(ts)
        rows.append(Row(algo, layout, label, med * 1e3, nbytes / med / 1e9))
    del opts
    gc.collect()
    return rows


def print_table(rows: list[Row]) -> None:
    print(
        f"{'algo':18} {'layout':9} {'variant':14} {'median ms':>10} {'GB/s':>6} "
        f"{'/loop':>6} {'/fused':>7} {'/best':>6}"
    )
    for (algo, layout), group in _grouped(rows).items():
        by = {r.variant: r.median_ms for r in group}
        torch_best = min(v for k, v in by.items() if _is_reference(k))
        loop = by.get("torch loop") or by["ref loop"]
        for r in group:
            if r.variant == "memory floor":
                print(f"{algo:18} {layout:9} {r.variant:14} {r.median_ms:10.2f} {r.gbps:6.1f} "
                      f"{'':21} (ref best / floor = {torch_best / r.median_ms:.1f}x)")
                continue
            fused = by.get("torch fused")
            rel_fused = f"{r.median_ms / fused:7.2f}" if fused else f"{'-':>7}"
            print(
                f"{algo:18} {layout:9} {r.variant:14} {r.median_ms:10.2f} {r.gbps:6.1f} "
                f"{r.median_ms / loop:6.2f} {rel_fused} "
                f"{r.median_ms / torch_best:6.2f}"
            )
        print()


def _grouped(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    out: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        out.setdefault((r.algo, r.layout), []).append(r)
    return out


# -- one-time compile cost, in fresh processes --------------------------------------------------
def first_steps(algos: list[str]) -> dict[str, float]:
    """Seconds of the first ``fused=True`` step of each algorithm (run in a child process)."""
    out = {}
    for algo in algos:
        params = make_params("160x100k")
        opt = _ready(ours.create(algo, params, fused=True, **ALGOS[algo].hparams))
        start = time.perf_counter()
        opt.step()
        out[algo] = time.perf_counter() - start
    return out


def compile_costs(algos: list[str]) -> None:
    """Run :func:`first_steps` twice in fresh processes sharing a new, empty inductor cache."""
    with tempfile.TemporaryDirectory(prefix="optimlab-bench-cache-") as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
        runs = []
        for _ in ("cold", "warm"):
            cmd = [sys.executable, __file__, "--first-steps", ",".join(algos)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("one-time cost of fused=True (first step, fresh process, 160x100k):")
    print(f"{'algo':18} {'empty cache s':>14} {'warm cache s':>13}")
    for algo in algos:
        print(f"{algo:18} {runs[0][algo]:14.2f} {runs[1][algo]:13.2f}")
    print("(the first algorithm of a process also pays inductor's own start-up)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default=",".join(ALGOS), help="comma-separated names")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated layouts")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant")
    parser.add_argument("--quick", action="store_true", help="3 repeats, no compile runs")
    parser.add_argument("--scale", type=int, default=1,
                        help="divide every tensor's size by this (e.g. 1000 for a smoke run)")
    parser.add_argument("--first-steps", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_steps:
        print(json.dumps(first_steps(args.first_steps.split(","))))
        return
    algos = [a for a in args.algos.split(",") if a]
    layouts = [name for name in args.layouts.split(",") if name]
    for name in algos:
        if name not in ALGOS:
            parser.error(f"unknown algorithm {name!r}; valid: {', '.join(ALGOS)}")
    for name in layouts:
        if name not in LAYOUTS:
            parser.error(f"unknown layout {name!r}; valid: {', '.join(LAYOUTS)}")
    repeats = 3 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 on CPU")
    if args.scale != 1:
        print(f"tensor sizes divided by {args.scale}: a smoke run, not a measurement")
    rows = []
    for algo in algos:
        for layout in layouts:
            rows.extend(time_layout(algo, layout, repeats, args.warmup, args.scale))
    print_table(rows)
    if not args.quick:
        compile_costs(algos)


if __name__ == "__main__":
    main()

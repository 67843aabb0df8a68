"""Epoch time of ``optimlab.engine.fit`` against the seeds' DataLoader loop and the compute floor.

Seed 004's MLP (784-128-128-128-10, LeakyReLU) with SGD (lr 1e-4) on MNIST-shaped random data
(60000 × 1 × 28 × 28, 10 classes), at batch 64 and 4096. For each batch size, in one process
and interleaved epoch by epoch (so machine noise hits all alike):

- ``seeds``   the seed notebooks' way: a per-sample ``Dataset`` in a ``DataLoader(shuffle=True)``,
              zero_grad / forward / backward / step, batch losses collected and averaged;
- ``floor``   forward + backward + step on one pre-made batch, repeated as many steps as an
              epoch has — what the arithmetic alone costs;
- ``fit``     ``optimlab.engine.fit`` (device-resident batches, one host sync per epoch);
- ``fit+compile``  ``fit(compile=True)``: the train step through ``torch.compile``
              (skipped with ``--no-compile``).

Prints the median (and minimum) seconds per epoch and the ratios fit/floor and seeds/fit. Run::

    python benchmarks/train_loop.py            # 5 timed epochs per method and batch size
    python benchmarks/train_loop.py --quick    # 2 timed epochs, smaller data
    python benchmarks/train_loop.py --telemetry --threads 1   # fit(telemetry=True) vs off,
                                               # digits/mlp batch 64 (the default compare run)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from optimlab.data import Dataset, from_tensors
from optimlab.engine import fit
from optimlab.models import build_model


class PerSample(TorchDataset):
    """The seeds' style: one example per ``__getitem__``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def _fresh(device: torch.device, seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = build_model("mlp", (1, 28, 28), 10, seed=seed).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=1e-4)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seeds_epoch(batch_size: int, data: Dataset) -> Callable[[], float]:
    model, opt = _fresh(data.train.x.device)
    loader = DataLoader(PerSample(data.train.x, data.train.y), batch_size=batch_size,
                        shuffle=True)

    def epoch() -> float:
        t0 = time.perf_counter()
        losses = []
        for x, y in loader:
            out = model(x)
            opt.zero_grad()
            loss = F.cross_entropy(out, y)
            loss.backward()
            losses.append(loss.clone().detach())
            opt.step()
        torch.tensor(losses).mean()
        return time.perf_counter() - t0

    return epoch


def floor_epoch(batch_size: int, data: Dataset) -> Callable[[], float]:
    device = data.train.x.device
    model, opt = _fresh(device)
    x, y = data.train.x[:batch_size].clone(), data.train.y[:batch_size].clone()
    steps = -(-len(data.train) // batch_size)

    def epoch() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        _sync(device)
        return time.perf_counter() - t0

    return epoch


def fit_epoch(batch_size: int, data: Dataset, compile: bool = False) -> Callable[[], float]:
    model, opt = _fresh(data.train.x.device)
    seed = iter(range(10**6))

    def epoch() -> float:
        result = fit(model, opt, data, epochs=1, batch_size=batch_size, seed=next(seed),
                     progress=False, compile=compile)
        return result.history.wall_time[-1]

    return epoch


def bench(batch_size: int, data: Dataset, reps: int, compile: bool) -> dict[str, list[float]]:
    methods = {"seeds": seeds_epoch(batch_size, data), "floor": floor_epoch(batch_size, data),
               "fit": fit_epoch(batch_size, data)}
    if compile:
        methods["fit+compile"] = fit_epoch(batch_size, data, compile=True)
    for run in methods.values():  # warm-up epoch (allocator, compilation)
        run()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(reps):
        for name, run in methods.items():
            times[name].append(run())
    return times


def report(batch_size: int, times: dict[str, list[float]]) -> None:
    """Print medians (and minima: on a shared machine the least-disturbed epoch) and ratios."""
    for label, agg in (("median", statistics.median), ("min", min)):
        t = {k: agg(v) for k, v in times.items()}
        cols = "  ".join(f"{k} {v:.3f}" for k, v in t.items())
        ratios = f"fit/floor {t['fit'] / t['floor']:.2f}  seeds/fit {t['seeds'] / t['fit']:.2f}"
        if "fit+compile" in t:
            ratios += (f"  seeds/compiled {t['seeds'] / t['fit+compile']:.2f}  "
                       f"compiled/floor {t['fit+compile'] / t['floor']:.2f}")
        print(f"batch {batch_size:5d} {label:6s} s/epoch: {cols}\n{'':19s}{ratios}")


def telemetry_bench(reps: int) -> None:
    """fit with and without telemetry on the default comparison's run (digits, mlp, batch 64),
    interleaved epoch by epoch; telemetry should cost <= 10% (issue 12)."""
    from optimlab.data import load_dataset

    data = load_dataset("digits", seed=0)
    for name, make in (("sgd momentum 0.9", lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9)),
                       ("adam", lambda p: torch.optim.Adam(p, lr=1e-3))):
        runs = {}
        for telemetry in (False, True):
            model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
            runs[telemetry] = (model, make(model.parameters()))
        times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(reps + 1):  # the first epoch is a warm-up
            for telemetry, (model, opt) in runs.items():
                wall = fit(model, opt, data, epochs=1, seed=rep, progress=False,
                           telemetry=telemetry).history.wall_time[-1]
                if rep:
                    times[telemetry].append(wall)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"digits/mlp batch 64, {name}: s/epoch without telemetry {off:.4f}, with "
              f"{on:.4f}; with/without {on / off:.3f} (median of {reps} epochs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs on 12000 examples")
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per method")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 4096])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-compile", action="store_true", help="skip fit(compile=True)")
    parser.add_argument("--telemetry", action="store_true",
                        help="only fit with and without telemetry on digits/mlp")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.telemetry:
        telemetry_bench(args.reps or 200)
        return
    n = 12000 if args.quick else 60000
    reps = args.reps or (2 if args.quick else 5)
    gen = torch.Generator().manual_seed(0)
    data = from_tensors(torch.rand(n, 1, 28, 28, generator=gen),
                        torch.randint(0, 10, (n,), generator=gen),
                        val_fraction=0.0, test_fraction=0.0, device=args.device)
    print(f"torch {torch.__version__} on {args.device}, {torch.get_num_threads()} threads, "
          f"{n} examples, {reps} timed epochs per method")
    for bs in args.batch_sizes:
        report(bs, bench(bs, data, reps, not args.no_compile))

if __name__ == "__main__":
    main()

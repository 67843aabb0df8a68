"""The training loop: epochs over device-resident batches, validation, schedulers, early
stopping, divergence detection and exact checkpoint/resume.

Reading order: :func:`fit` sets up a :class:`~optimlab.engine.checkpoint.RunState` (resuming
it from a checkpoint if asked), then loops: :func:`_train_epoch` (the per-batch loop: one
:mod:`~optimlab.engine.step` call per batch), :func:`_validate_epoch`, :func:`_end_epoch`
(divergence, early stopping, the per-epoch scheduler step), a checkpoint.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from optimlab.data import Dataset, device_batches
from optimlab.engine import checkpoint as ckpt
from optimlab.engine.checkpoint import RunState
from optimlab.engine.early_stopping import EarlyStopping
from optimlab.engine.evaluate import loss_function, split_metrics
from optimlab.engine.history import FitResult
from optimlab.engine.recipes import RunLength, check_every, for_run
from optimlab.engine.schedules import Schedule, parse_schedule
from optimlab.engine.step import OptimizerModes, TrainStep, make_train_step
from optimlab.engine.telemetry import Telemetry
from optimlab.engine.tensorboard import TensorBoardLog, check_log_dir, run_hparams
from optimlab.errors import UserError

EpochCallback = Callable[[int, dict], None]

__all__ = ["EpochCallback", "fit", "make_train_step"]


def _run_spec(model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset,
              settings: dict[str, Any], early_stopping: EarlyStopping | None) -> dict[str, str]:
    """Everything that must match for a checkpoint to continue this run (strings only)."""
    return {
        "dataset": data.name,
        "data_shape": repr((len(data.train), len(data.val), data.input_shape, data.num_outputs)),
        "model": repr(model),
        "optimizer": type(optimizer).__name__,
        "optimizer_defaults": repr(sorted(optimizer.defaults.items())),
        "early_stopping": repr(early_stopping.config() if early_stopping else None),
        **{k: repr(v) for k, v in settings.items()},
    }


def _check_arguments(epochs: int, batch_size: int, val_every: int, checkpoint_every: int,
                     clip_grad_norm: float | None) -> None:
    for label, v, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1),
                          ("val_every", val_every, 1), ("checkpoint_every", checkpoint_every, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise UserError(f"{label} must be an integer >= {low}, got {v!r}")
    if clip_grad_norm is not None and (
            isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, int | float)
            or not math.isfinite(clip_grad_norm) or clip_grad_norm <= 0):
        raise UserError(f"clip_grad_norm must be a finite number > 0 (or None), "
                        f"got {clip_grad_norm!r}")


def _check_devices(model: nn.Module, data: Dataset) -> None:
    device = data.train.x.device
    for p in model.parameters():
        if p.device != device:
            raise UserError(f"the model is on {p.device} but the data on {device}; "
                            f"call model.to({str(device)!r}) before creating the optimizer")


def _as_schedule(scheduler: str | Schedule | None, scheduler_args: dict | None
                 ) -> Schedule | None:
    if isinstance(scheduler, Schedule):
        if scheduler_args:
            raise UserError("scheduler_args goes with a scheduler name; a Schedule holds its "
                            "own arguments")
        return scheduler
    if scheduler is None:
        if scheduler_args:
            raise UserError("scheduler_args given without a scheduler")
        return None
    return parse_schedule(scheduler, scheduler_args)


def _train_epoch(run: RunState, data: Dataset, step: TrainStep, batch_size: int,
                 per_step: bool) -> float:
    """One pass over the training batches; the mean batch loss (one host sync)."""
    run.model.train()
    losses = []
    for x, y in device_batches(data.train, batch_size, run.generator):
        losses.append(step(x, y))
        # per-batch hooks (a per-step scheduler, telemetry) go here: no host sync in this loop
        if per_step:
            run.scheduler.step()
    # one host sync per epoch: the batch losses stay on the device until this sum
    return float(torch.stack(losses).sum()) / len(losses) if losses else math.nan


def _validate_epoch(run: RunState, data: Dataset, loss: str | None
                    ) -> tuple[float | None, float | None]:
    vl, va, _ = split_metrics(run.model, data.val, data.task, loss)
    return float(vl), (None if va is None else float(va))


def _end_epoch(run: RunState, row: dict[str, Any], per_step: bool) -> str | None:
    """Divergence, early stopping and the per-epoch scheduler step after an epoch; the final
    status if the run ends here."""
    val_loss = row["val_loss"]
    if not math.isfinite(row["train_loss"]) or (val_loss is not None and
                                                not math.isfinite(val_loss)):
        return "diverged"
    stop = False
    if run.early_stopping is not None and val_loss is not None:
        stop = run.early_stopping.step(val_loss, run.model)
    if run.scheduler is not None:
        if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_loss is not None:  # no validation this epoch: the plateau count waits
                run.scheduler.step(val_loss)
        elif not per_step:
            run.scheduler.step()
    if stop:
        assert run.early_stopping is not None
        run.early_stopping.restore(run.model)
        return "early_stopped"
    return None


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    *,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
    loss: str | None = None,
    scheduler: str | Schedule | None = None,
    scheduler_args: dict | None = None,
    schedule_every: str = "epoch",
    val_every: int = 1,
    early_stopping: EarlyStopping | None = None,
    clip_grad_norm: float | None = None,
    progress: bool = True,
    progress_label: str = "fit",
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    config: dict | None = None,
    on_epoch_end: EpochCallback | None = None,
    compile: bool = False,
    closure: bool | None = None,
    telemetry: bool = False,
    tensorboard: str | Path | None = None,
) -> FitResult:
    """Train ``model`` with ``optimizer`` on ``data.train`` for ``epochs`` epochs.

    Each epoch draws a batch order from a ``torch.Generator`` seeded with ``seed`` (so the same
    seed gives the same batches whatever the optimizer), trains on device-resident batches and,
    every ``val_every`` epochs, measures loss and accuracy on ``data.val``. The loss defaults to
    cross-entropy (classification) or MSE (regression). ``scheduler`` is a name from
    :mod:`optimlab.engine.schedules` with ``scheduler_args``, or a
    :class:`~optimlab.engine.schedules.Schedule` parsed beforehand; it is rehearsed over the
    whole run before training (a failing step or a negative learning rate is a
    :class:`UserError`), then stepped once per epoch (``ReduceLROnPlateau`` with the validation
    loss, on validation epochs only) — or, with ``schedule_every="step"``, once per batch
    (warmup, OneCycle; ReduceLROnPlateau still steps per validation). Recipes and chains
    (:mod:`optimlab.engine.recipes`) take their length from the run: ``epochs`` scheduler
    steps, or ``epochs`` × batches per epoch when per step. ``early_stopping`` watches the
    validation loss; when it stops the run, its best weights are restored. A non-finite train
    or validation loss ends the run with status ``"diverged"`` (its row is kept in the
    history); Ctrl-C ends it with ``"interrupted"``. ``clip_grad_norm`` clips the gradients'
    total norm (finite, > 0).

    Optimizers that need a closure (LBFGS, SAM-style; ``closure`` None detects them) and
    optimizers with ``train()``/``eval()`` modes (Schedule-Free) are driven as
    :mod:`optimlab.engine.step` describes; the model is returned with the evaluation weights.

    With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` epochs and at
    the end; with ``resume=True`` an existing checkpoint there is checked against ``config``
    and this call's settings (:class:`CheckpointError` on any difference) and training
    continues from it, bit-identically to a run never interrupted (on CPU). A finished run
    returns its stored result. ``compile=True`` runs the train step through ``torch.compile``.
    ``progress_label`` names the run on the progress bar.

    ``telemetry=True`` records per-layer statistics of the last optimizer step of each epoch
    into ``History.telemetry`` (:mod:`optimlab.engine.telemetry`; the trajectory is unchanged);
    ``tensorboard`` is a folder for TensorBoard event files of this run
    (:mod:`optimlab.engine.tensorboard`).

    Example::

        data = load_dataset("digits")
        model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
        opt = optimlab.optim.Adam(model.parameters(), lr=1e-3)
        result = fit(model, opt, data, epochs=10, checkpoint_dir="runs/a", resume=True)
    """
    _check_arguments(epochs, batch_size, val_every, checkpoint_every, clip_grad_norm)
    _check_devices(model, data)
    if tensorboard is not None:
        check_log_dir(tensorboard)
    loss_fn = loss_function(loss, data.task)
    schedule = _as_schedule(scheduler, scheduler_args)
    length = RunLength(epochs, max(1, math.ceil(len(data.train) / batch_size)),
                       check_every(schedule_every))
    if schedule is not None:
        schedule = for_run(schedule, length)
        schedule.check(optimizer, length.total)
    per_step = schedule is not None and not schedule.per_validation and schedule_every == "step"
    settings = {"batch_size": batch_size, "seed": seed, "loss": loss,
                "scheduler": None if schedule is None else schedule.name,
                "scheduler_args": None if schedule is None else schedule.kwargs,
                **({"schedule_every": "step"} if per_step else {}),  # old checkpoints fit
                "val_every": val_every, "clip_grad_norm": clip_grad_norm}
    run = RunState(model, optimizer, None if schedule is None else schedule.build(optimizer),
                   early_stopping, torch.Generator().manual_seed(seed),
                   _run_spec(model, optimizer, data, settings, early_stopping),
                   json.dumps(config, sort_keys=True, default=repr))
    path = ckpt.checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if path is not None:
        ckpt.remove_stale_temporaries(path)
    if resume and path is not None and path.exists():
        state = ckpt.load(path)
        ckpt.restore(run, state, path)
        if state["status"] in ("early_stopped", "diverged") or (
                state["status"] == "finished" and run.epoch >= epochs):
            return _result(run, state["status"])
    step = make_train_step(model, optimizer, loss_fn, clip_grad_norm, compile, closure)
    modes = OptimizerModes(optimizer)
    recorder = Telemetry(model, optimizer) if telemetry else None
    if recorder is not None:  # off, the step is not wrapped at all
        step = recorder.observe(step, max(1, math.ceil(len(data.train) / batch_size)))
    board = None if tensorboard is None else TensorBoardLog(
        tensorboard, run_hparams(optimizer, {**settings, "epochs": epochs}))
    bar = tqdm(total=epochs, initial=run.epoch, unit="epoch", desc=progress_label, leave=False,
               disable=not (progress and sys.stderr.isatty()))
    status = "finished"
    try:
        while run.epoch < epochs:
            t0 = time.perf_counter()
            lr = float(optimizer.param_groups[0]["lr"])
            modes.train()
            train_loss = _train_epoch(run, data, step, batch_size, per_step)
            modes.eval()  # every epoch: validation, checkpoints and the result see eval weights
            val_loss = val_acc = None
            if len(data.val) > 0 and (run.epoch + 1) % val_every == 0 and math.isfinite(
                    train_loss):
                val_loss, val_acc = _validate_epoch(run, data, loss)
            run.wall += time.perf_counter() - t0
            run.epoch += 1
            row = {"epoch": run.epoch, "train_loss": train_loss, "val_loss": val_loss,
                   "val_accuracy": val_acc, "lr": lr, "wall_time": run.wall}
            measured = recorder.pop() if recorder is not None else None
            run.history.append(row, measured)
            if board is not None:
                board.log_epoch(row, measured)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()
                             if v is not None and k not in ("epoch", "wall_time")})
            if on_epoch_end is not None:
                on_epoch_end(run.epoch, dict(row))
            ended = _end_epoch(run, row, per_step)
            if ended is not None:
                status = ended
                break
            if path is not None and run.epoch % checkpoint_every == 0 and run.epoch < epochs:
                ckpt.save_atomic(ckpt.capture(run, "interrupted"), path)
    except KeyboardInterrupt:
        modes.eval()  # the returned model holds the evaluation weights, as on every other end
        return _result(run, "interrupted")  # the last checkpoint on disk stays as it was
    finally:
        bar.close()
        if board is not None:
            board.close(run.history)
    if path is not None:
        ckpt.save_atomic(ckpt.capture(run, status), path)
    return _result(run, status)


def _result(run: RunState, status: str) -> FitResult:
    return FitResult(run.history, status, len(run.history), run.wall)

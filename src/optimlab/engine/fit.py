"""The training loop: epochs over device-resident batches, validation, schedulers, early
stopping, divergence detection and exact checkpoint/resume."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from optimlab.data import Dataset, device_batches
from optimlab.engine import checkpoint as ckpt
from optimlab.engine.early_stopping import EarlyStopping
from optimlab.engine.evaluate import loss_function, split_metrics
from optimlab.engine.history import FitResult, History
from optimlab.engine.schedules import create_scheduler
from optimlab.errors import UserError

EpochCallback = Callable[[int, dict], None]


def make_train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., Tensor],
    clip_grad_norm: float | None = None, compile: bool = False,
) -> Callable[[Tensor, Tensor], Tensor]:
    """One optimisation step on a batch; returns the detached batch loss (no host sync).

    With ``compile=True`` the whole step (forward, loss, backward, clipping, optimizer step) is
    handed to ``torch.compile`` with static shapes (``dynamic=False``): the smaller last batch
    gets its own graph instead of turning every batch's graph dynamic, which measured slower.
    """
    params = [p for g in optimizer.param_groups for p in g["params"]]

    def step(x: Tensor, y: Tensor) -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(params, clip_grad_norm)
        optimizer.step()
        return loss.detach()

    return torch.compile(step, dynamic=False) if compile else step


def _run_spec(model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset,
              settings: dict[str, Any], early_stopping: EarlyStopping | None) -> dict[str, Any]:
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


def _validate(epochs: int, batch_size: int, val_every: int, checkpoint_every: int) -> None:
    for label, v in (("epochs", epochs), ("batch_size", batch_size), ("val_every", val_every),
                     ("checkpoint_every", checkpoint_every)):
        if not isinstance(v, int) or v < (0 if label == "epochs" else 1):
            low = 0 if label == "epochs" else 1
            raise UserError(f"{label} must be an integer >= {low}, got {v!r}")


def _check_devices(model: nn.Module, data: Dataset) -> None:
    device = data.train.x.device
    for p in model.parameters():
        if p.device != device:
            raise UserError(f"the model is on {p.device} but the data on {device}; "
                            f"call model.to({str(device)!r}) before creating the optimizer")


class _Run:
    """The mutable state of one fit call (kept together so it can be checkpointed)."""

    def __init__(self, model, optimizer, scheduler, early_stopping, generator, spec, config):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.early_stopping, self.generator = early_stopping, generator
        self.spec, self.config_json = spec, json.dumps(config, sort_keys=True, default=repr)
        self.history, self.epoch, self.wall = History(), 0, 0.0

    def state(self, status: str) -> dict[str, Any]:
        return {
            "format": ckpt.FORMAT, "status": status, "epoch": self.epoch, "wall": self.wall,
            "run": self.spec, "config": self.config_json,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            "rng": ckpt.rng_state(self.generator), "history": self.history.to_dict(),
        }

    def restore(self, state: dict[str, Any], path: Path) -> None:
        ckpt.check_same_run(json.loads(state["config"]) or {}, json.loads(self.config_json) or {},
                            path)
        ckpt.check_same_run(state["run"], self.spec, path)
        shapes = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        stored = {k: tuple(v.shape) for k, v in state["model"].items()}
        if shapes != stored:  # checked before anything is loaded: no partial load
            raise CheckpointMismatch(f"checkpoint {path} holds another model's weights")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler:
                self.scheduler.load_state_dict(state["scheduler"])
            if self.early_stopping:
                self.early_stopping.load_state_dict(state["early_stopping"])
            ckpt.set_rng_state(state["rng"], self.generator)
            self.history = History.from_dict(state["history"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CheckpointMismatch(f"checkpoint {path} does not fit this run: {e}") from e
        self.epoch, self.wall = int(state["epoch"]), float(state["wall"])

    def result(self, status: str) -> FitResult:
        return FitResult(self.history, status, len(self.history), self.wall)


class CheckpointMismatch(ckpt.CheckpointError):
    """A checkpoint whose states do not load into this model/optimizer."""


def _epoch(run: _Run, data: Dataset, step: Callable, batch_size: int, val: bool,
           loss: str | None) -> dict[str, Any]:
    """Train one epoch (one host sync for the loss) and validate if asked; the history row."""
    t0 = time.perf_counter()
    lr = float(run.optimizer.param_groups[0]["lr"])
    run.model.train()
    losses = [step(x, y) for x, y in device_batches(data.train, batch_size, run.generator)]
    # one host sync per epoch: the batch losses stay on the device until this sum
    train_loss = float(torch.stack(losses).sum()) / len(losses) if losses else math.nan
    val_loss = val_acc = None
    if val and math.isfinite(train_loss):
        vl, va, _ = split_metrics(run.model, data.val, data.task, loss)
        val_loss, val_acc = float(vl), (None if va is None else float(va))
    run.wall += time.perf_counter() - t0
    return {"epoch": run.epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
            "val_accuracy": val_acc, "lr": lr, "wall_time": run.wall}


def _after_epoch(run: _Run, row: dict[str, Any]) -> str | None:
    """Scheduler and early stopping after an epoch; the final status if the run ends here."""
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
        else:
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
    scheduler: str | None = None,
    scheduler_args: dict | None = None,
    val_every: int = 1,
    early_stopping: EarlyStopping | None = None,
    clip_grad_norm: float | None = None,
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    config: dict | None = None,
    on_epoch_end: EpochCallback | None = None,
    compile: bool = False,
) -> FitResult:
    """Train ``model`` with ``optimizer`` on ``data.train`` for ``epochs`` epochs.

    Each epoch draws a batch order from a ``torch.Generator`` seeded with ``seed`` (so the same
    seed gives the same batches whatever the optimizer), trains on device-resident batches and,
    every ``val_every`` epochs, measures loss and accuracy on ``data.val``. The loss defaults to
    cross-entropy (classification) or MSE (regression). ``scheduler`` names a
    ``torch.optim.lr_scheduler`` class (see :mod:`optimlab.engine.schedules`), stepped once per
    epoch
    (``ReduceLROnPlateau`` with the validation loss, on validation epochs only).
    ``early_stopping`` watches the validation loss; when it stops the run, its best weights are
    restored (``restore_best``). A non-finite train or validation loss ends the run with status
    ``"diverged"`` (its row is kept in the history); Ctrl-C ends it with ``"interrupted"``.

    With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` epochs and at
    the end; with ``resume=True`` an existing checkpoint there is checked against ``config``
    and this call's settings (:class:`CheckpointError` on any difference) and training
    continues from it, bit-identically to a run never interrupted (on CPU). A finished run
    returns its stored result. ``compile=True`` runs the train step through ``torch.compile``.

    Example::

        data = load_dataset("digits")
        model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
        opt = optimlab.optim.Adam(model.parameters(), lr=1e-3)
        result = fit(model, opt, data, epochs=10, checkpoint_dir="runs/a", resume=True)
    """
    _validate(epochs, batch_size, val_every, checkpoint_every)
    _check_devices(model, data)
    loss_fn = loss_function(loss, data.task)
    sched = create_scheduler(scheduler, optimizer, **(scheduler_args or {})) if scheduler else None
    settings = {"batch_size": batch_size, "seed": seed, "loss": loss, "scheduler": scheduler,
                "scheduler_args": scheduler_args, "val_every": val_every,
                "clip_grad_norm": clip_grad_norm}
    spec = _run_spec(model, optimizer, data, settings, early_stopping)
    run = _Run(model, optimizer, sched, early_stopping, torch.Generator().manual_seed(seed),
               spec, config)
    path = ckpt.checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and path is not None and path.exists():
        state = ckpt.load(path)
        run.restore(state, path)
        if state["status"] in ("early_stopped", "diverged") or (
                state["status"] == "finished" and run.epoch >= epochs):
            return run.result(state["status"])
    step = make_train_step(model, optimizer, loss_fn, clip_grad_norm, compile)
    bar = tqdm(total=epochs, initial=run.epoch, unit="epoch", desc="fit", leave=False,
               disable=not (progress and sys.stderr.isatty()))
    status = "finished"
    try:
        while run.epoch < epochs:
            validate = len(data.val) > 0 and (run.epoch + 1) % val_every == 0
            row = _epoch(run, data, step, batch_size, validate, loss)
            run.epoch += 1
            run.history.append(row)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()
                             if v is not None and k not in ("epoch", "wall_time")})
            if on_epoch_end is not None:
                on_epoch_end(run.epoch, dict(row))
            ended = _after_epoch(run, row)
            if ended is not None:
                status = ended
                break
            if path is not None and run.epoch % checkpoint_every == 0 and run.epoch < epochs:
                ckpt.save_atomic(run.state("interrupted"), path)
    except KeyboardInterrupt:
        return run.result("interrupted")  # the last checkpoint on disk stays as it was
    finally:
        bar.close()
    if path is not None:
        ckpt.save_atomic(run.state(status), path)
    return run.result(status)

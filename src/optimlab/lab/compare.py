"""Run a comparison: the same model, data and batches under each optimizer, then the outputs.

Controlled by construction: for each seed, every optimizer's model comes from
``build_model(..., seed=seed)`` (the same initial weights) and ``fit(..., seed=seed)`` (the same
batches in the same order), so only the optimizer differs. Everything the user gave is checked
before anything is trained or written, so a mistake costs no time and leaves no results.json.

The output folder: ``--out`` (an explicit folder must be new or empty; ``force=True`` empties
a previous comparison's folder first) or, by default, ``runs/<YYYYmmdd-HHMMSS>-compare``
created exclusively (``-2``, ``-3``… when two comparisons start in the same second), so two
comparisons never share a folder and stale files never mix with new ones.

Layout of the output folder::

    comparison.json            config + store location + experiment id (what --resume reads)
    checkpoints/<run>/seed<s>/ fit's checkpoint of each run (exact resume)
    checkpoints/<run>/seed<s>/result.json  the finished run's record (skipped on resume)
    results.json  history.csv  *.png  report.html
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimlab.engine.schedules import Schedule
from optimlab.engine.tensorboard import check_log_dir
from optimlab.errors import UserError
from optimlab.lab import plots, report, results
from optimlab.lab.config import CompareConfig
from optimlab.lab.out_folder import (  # re-exported: tune uses compare's helpers
    check_out_dir,
    default_out_dir,
    first_missing,
    make_out_dir,
    remove_empty_folders,
)
from optimlab.lab.spec import (
    Spec,
    build_optimizer,
    check_optimizer_spec,
    folder_names,
    parse_scheduler_spec,
    parse_spec,
    unique_names,
)
from optimlab.lab.store import RunStore
from optimlab.lab.telemetry_plots import write_telemetry_plots

STATE_FILE = "comparison.json"


@dataclass(frozen=True)
class PlannedRun:
    """One optimizer of the comparison: its spec, unique name, checkpoint folder name and the
    comparison's schedule (parsed once, when planned)."""

    spec: Spec
    name: str
    folder: str
    schedule: Schedule | None = None


@dataclass
class Comparison:
    """What :func:`run_comparison` returns."""

    out_dir: Path
    config: CompareConfig
    runs: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    report_path: Path | None
    experiment_id: int
    interrupted: bool = False
    plots: list[tuple[str, str]] = field(default_factory=list)


def plan(config: CompareConfig) -> list[PlannedRun]:
    """Parse and check every optimizer spec, the scheduler and early stopping; name the runs.

    What needs the model (each optimizer built over its parameters, the schedule rehearsed on
    it) is :func:`check_plan`'s.
    """
    from optimlab.engine import EarlyStopping

    specs = [parse_spec(text) for text in config.optimizer]
    for spec in specs:
        check_optimizer_spec(spec)
    schedule = parse_scheduler_spec(config.scheduler) if config.scheduler else None
    if config.patience is not None:
        EarlyStopping(config.patience, config.min_delta)
    names = unique_names([s.label for s in specs])
    return [PlannedRun(s, n, f, schedule)
            for s, n, f in zip(specs, names, folder_names(names), strict=True)]


def check_plan(planned: list[PlannedRun], config: CompareConfig, model: Any, data: Any) -> None:
    """Build every planned optimizer for real over ``model``'s parameters and rehearse the
    schedule on it for the whole run (a throwaway build: ``model`` is not changed)."""
    from optimlab.engine.recipes import RunLength, for_run

    steps_per_epoch = max(1, -(-len(data.train) // config.batch_size))
    length = RunLength(config.epochs, steps_per_epoch, config.schedule_every)
    for run in planned:
        optimizer = build_optimizer(run.spec, model)
        if run.schedule is not None:
            for_run(run.schedule, length).check(optimizer, length.total)


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available, else cpu; ``cuda`` without CUDA is a user error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: CUDA is not available on this machine; use cpu or auto")
    if device not in ("cpu", "cuda"):
        raise UserError(f"unknown device {device!r}; valid: auto, cpu, cuda")
    return device


def environment(device: str) -> dict[str, Any]:
    """What produced the numbers: versions, device, host, git commit."""
    import torch

    import optimlab

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {"optimlab": optimlab.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "cuda": torch.version.cuda if device == "cuda" else None,
            "threads": torch.get_num_threads(), "host": socket.gethostname(), "git_sha": sha}


def run_config(config: CompareConfig, run: PlannedRun, seed: int) -> dict[str, Any]:
    """What a run's checkpoint is verified against on resume (not paths, not device)."""
    return {"dataset": config.dataset, "model": config.model, "optimizer": run.spec.text,
            "seed": seed, "epochs": config.epochs, "batch_size": config.batch_size,
            "scheduler": config.scheduler, "val_every": config.val_every,
            "patience": config.patience, "min_delta": config.min_delta,
            **({"schedule_every": "step"} if config.schedule_every == "step" else {})}


def _load_state(out_dir: Path) -> dict[str, Any]:
    path = out_dir / STATE_FILE
    if not path.is_file():
        raise UserError(f"--resume {out_dir}: no {STATE_FILE} there; not a comparison folder")
    try:
        state = json.loads(path.read_text())
        CompareConfig.from_dict(state["config"], source=str(path))
        return dict(state)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"--resume {out_dir}: {path} is damaged ({e})") from None


def run_comparison(
    config: CompareConfig,
    *,
    out_dir: str | Path | None = None,
    store_path: str | Path | None = "runs/optimlab.sqlite",
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    telemetry: bool = False,
    tensorboard: str | Path | None = None,
) -> Comparison:
    """Run (or, with ``resume=True``, continue) the comparison ``config`` describes.

    ``telemetry`` records per-layer statistics (``fit(telemetry=True)``) into each run's
    ``history.telemetry``; ``tensorboard`` writes event files to ``<tensorboard>/<run>/seed<s>``.

    ``out_dir`` defaults to a new ``runs/<YYYYmmdd-HHMMSS>-compare``; an explicit one must be
    new or empty unless ``force`` (empties a previous comparison's folder). ``store_path``
    None keeps no store. ``log`` receives one line per run. Everything — specs, scheduler,
    every optimizer built over the model, dataset, model, output folder — is checked before
    anything is written; a mistake raises UserError.
    """
    import torch

    from optimlab.data import load_dataset
    from optimlab.models import build_model

    say = log or (lambda _msg: None)
    explicit = out_dir is not None
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    if resume and force:
        raise UserError("--force starts afresh and --resume continues: choose one")
    saved = _load_state(out) if resume else {}
    if not resume:
        check_out_dir(out, explicit=explicit, force=force, state_file=STATE_FILE)
    if tensorboard is not None:
        check_log_dir(tensorboard)
    if not resume:  # lr=find: a range test per such spec (the saved config holds its lrs)
        from optimlab.lab.learning_rates import resolve_config_lr_find

        config = resolve_config_lr_find(config, device=resolve_device(config.device), log=say)
    planned = plan(config)
    device = resolve_device(config.device)
    seeds = list(range(config.seed, config.seed + config.seeds))
    data = load_dataset(config.dataset, data_dir=config.data_dir, seed=seeds[0], device=device)
    model = build_model(config.model, data.input_shape, data.num_outputs, seed=seeds[0])
    check_plan(planned, config, model.to(device), data)

    if not resume:
        first_new = first_missing(out)
        out = make_out_dir(out, explicit=explicit, force=force)
    try:
        store = RunStore(store_path) if store_path is not None else None
    except BaseException:  # a bad store: take back the folders just made (still empty)
        if not resume:
            remove_empty_folders(out, first_new if first_new is not None else out)
        raise
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_all(config, planned, seeds, data, device, out, saved, store, store_path,
                        resume, progress, say, Observe(telemetry, tensorboard))
    finally:
        torch.set_num_threads(threads)


def _run_all(config: CompareConfig, planned: list[PlannedRun], seeds: list[int], data: Any,
             device: str, out: Path, saved: dict[str, Any], store: RunStore | None,
             store_path: str | Path | None, resume: bool, progress: bool,
             say: Callable[[str], None], observe: Observe) -> Comparison:
    """Every planned run for every seed, then the outputs (closes ``store``)."""
    from optimlab.data import load_dataset

    # Absolute, so that --resume finds the same store from any working directory.
    store_abs = None if store_path is None else str(Path(store_path).resolve())
    exp_id = int(saved.get("experiment_id") or 0)
    if store is not None and (not exp_id or saved.get("store") != store_abs):
        exp_id = store.add_experiment(config.to_dict(), str(out))
    results.write_json(out / STATE_FILE, {"config": config.to_dict(), "experiment_id": exp_id,
                                          "store": store_abs})
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    interrupted = False
    try:
        for seed in seeds:
            if seed != seeds[0]:
                data = load_dataset(config.dataset, data_dir=config.data_dir, seed=seed,
                                    device=device)
            for run in planned:
                record = _one_run(config, run, seed, data, out, store, exp_id, resume,
                                  progress, observe)
                runs[(run.name, seed)] = record
                say(_run_line(record, len(runs), len(planned) * len(seeds)))
                if record["status"] == "interrupted":
                    interrupted = True
                    break
            if interrupted:
                break
    finally:
        if store is not None:
            store.close()
    ordered = [runs[(r.name, s)] for r in planned for s in seeds if (r.name, s) in runs]
    return _write_outputs(out, config, ordered, data, device, exp_id, interrupted, seeds)


def resume_comparison(out_dir: str | Path, *, store_path: str | Path | None = None,
                      progress: bool = False, log: Callable[[str], None] | None = None,
                      telemetry: bool = False, tensorboard: str | Path | None = None
                      ) -> Comparison:
    """Continue the comparison in ``out_dir`` from its saved config and checkpoints."""
    out = Path(out_dir)
    state = _load_state(out)
    config = CompareConfig.from_dict(state["config"], source=str(out / STATE_FILE))
    store = store_path if store_path is not None else state.get("store")
    return run_comparison(config, out_dir=out, store_path=store, resume=True,
                          progress=progress, log=log, telemetry=telemetry,
                          tensorboard=tensorboard)


def _run_line(record: dict[str, Any], i: int, n: int) -> str:
    acc = record.get("test_accuracy")
    score = f"test acc {100 * acc:.1f}%" if acc is not None else (
        f"test loss {record['test_loss']:.4g}" if record.get("test_loss") is not None else "")
    return (f"[{i}/{n}] {record['name']} seed {record['seed']}: {record['status']}, "
            f"{record['epochs_run']} epochs, {score} ({record['wall_seconds']:.1f} s)")


@dataclass(frozen=True)
class Observe:
    """What a run records besides its history: telemetry, TensorBoard event files."""

    telemetry: bool = False
    tensorboard: str | Path | None = None  # the root folder; each run gets <run>/seed<s>


def _one_run(config: CompareConfig, run: PlannedRun, seed: int, data: Any, out: Path,
             store: RunStore | None, exp_id: int, resume: bool, progress: bool,
             observe: Observe = Observe()) -> dict[str, Any]:
    """Train one optimizer on one seed (or load its finished record when resuming)."""
    from optimlab.engine import EarlyStopping, evaluate, fit
    from optimlab.models import build_model

    ckpt = out / "checkpoints" / run.folder / f"seed{seed}"
    done = ckpt / "result.json"
    rc = run_config(config, run, seed)
    if resume and done.is_file():
        try:
            record = dict(json.loads(done.read_text()))
        except ValueError as e:
            raise UserError(f"--resume: {done} is damaged ({e})") from None
        if record.get("run_config") != results.json_safe(rc):
            raise UserError(f"--resume: {done} belongs to another configuration")
        return record
    done.unlink(missing_ok=True)  # a stale record from an earlier comparison in this folder
    run_id = None
    if store is not None:
        run_id = store.find_run(exp_id, run.name, seed) if resume else None
        if run_id is not None:
            store.reclaim_run(run_id)
        else:
            run_id = store.start_run(exp_id, name=run.name, optimizer=run.spec.name,
                                     hparams=run.spec.hparams, seed=seed, config=rc)

    def on_epoch_end(epoch: int, metrics: dict[str, Any]) -> None:
        if store is not None and run_id is not None:
            store.log_epoch(run_id, epoch, metrics)

    model = build_model(config.model, data.input_shape, data.num_outputs, seed=seed)
    model = model.to(data.train.x.device)
    optimizer = build_optimizer(run.spec, model)
    stopper = (EarlyStopping(config.patience, config.min_delta)
               if config.patience is not None else None)
    status = "interrupted"
    try:
        fitted = fit(model, optimizer, data, epochs=config.epochs, batch_size=config.batch_size,
                     seed=seed, scheduler=run.schedule, schedule_every=config.schedule_every,
                     val_every=config.val_every,
                     early_stopping=stopper, progress=progress,
                     progress_label=f"{run.name} seed {seed}", checkpoint_dir=ckpt,
                     checkpoint_every=config.checkpoint_every, resume=resume, config=rc,
                     on_epoch_end=on_epoch_end, telemetry=observe.telemetry,
                     tensorboard=None if observe.tensorboard is None else
                     Path(observe.tensorboard) / run.folder / f"seed{seed}")
        status = fitted.status
        test = evaluate(model, data.test, task=data.task)
    except (KeyboardInterrupt, UserError):
        raise  # Ctrl-C, or a checkpoint refused: the run stays resumable (finally below)
    except Exception as e:  # a bug: the run failed, and says why
        status = "failed"
        if store is not None and run_id is not None:
            store.finish_run(run_id, "failed",
                             result={"error": f"{type(e).__name__}: {e}"[:1000]})
        raise
    finally:
        if store is not None and run_id is not None and status == "interrupted":
            store.finish_run(run_id, "interrupted")
    history = fitted.history.to_dict()
    record = {
        "name": run.name, "optimizer": run.spec.name, "hparams": run.spec.hparams,
        "spec": run.spec.text, "seed": seed, "status": fitted.status,
        "epochs_run": fitted.epochs_run,
        "history": {**{k: history.get(k, []) for k in (*results.HISTORY_KEYS, "wall_time")},
                    **({"telemetry": history["telemetry"]} if history["telemetry"] else {})},
        "test_loss": test.loss, "test_accuracy": test.accuracy,
        "confusion_matrix": test.confusion_matrix, "wall_seconds": fitted.wall_seconds,
        "checkpoint_dir": str(ckpt.relative_to(out)), "store_run_id": run_id,
        "run_config": rc,
    }
    if fitted.status != "interrupted":
        results.write_json(done, record)
    if store is not None and run_id is not None:
        store.finish_run(run_id, fitted.status, wall_seconds=fitted.wall_seconds,
                         result=results.json_safe({**{k: record[k] for k in (
                             "test_loss", "test_accuracy", "confusion_matrix", "epochs_run",
                             "spec")}, "task": data.task,
                             "class_names": list(data.class_names)}))
    return results.json_safe(record)


def _write_outputs(out: Path, config: CompareConfig, runs: list[dict[str, Any]], data: Any,
                   device: str, exp_id: int, interrupted: bool, seeds: list[int]) -> Comparison:
    env = environment(device)
    results.write_json(out / "results.json", {
        "runs": runs, "config": config.to_dict(), "environment": env,
        "experiment_id": exp_id, "interrupted": interrupted,
        "class_names": list(data.class_names), "task": data.task,
        "argv": sys.argv, "pid": os.getpid()})
    results.write_history_csv(out / "history.csv", runs)
    written = plots.write_plots(runs, out, task=data.task, class_names=data.class_names,
                                seeds=len(seeds))
    written += write_telemetry_plots(runs, out)  # nothing without --telemetry
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}…{seeds[-1]}"
    note = (f"{config.dataset} / {config.model}, {config.epochs} epochs, batch "
            f"{config.batch_size}, {seed_text}; every optimizer starts from the same initial "
            "weights and sees the same batches.")
    if interrupted:
        note += " Interrupted: resume with --resume."
    path = report.write_report(out, title=f"optimlab compare — {out.name}", runs=runs,
                               config=config.to_dict(), environment=env, plots=written,
                               note=note)
    return Comparison(out_dir=out, config=config, runs=runs, rows=results.grouped_rows(runs),
                      report_path=path, experiment_id=exp_id, interrupted=interrupted,
                      plots=written)

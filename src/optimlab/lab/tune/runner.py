"""``tune``: each optimizer tuned on an equal budget, its best rerun on other seeds.

Layout of the output folder::

    tune.json        config + store location + experiment id + driver pid (what --resume reads)
    study.sqlite     Optuna's studies (one per optimizer; RDB storage)
    trials/<optimizer>/trial<k>.json    each finished trial's record (its history, no test)
    reruns/<optimizer>/seed<s>.json     the best configuration's reruns
    defaults/<spec>/seed<s>.json        the untuned default compare spec's reruns
    results.json  trials.csv  lr_sensitivity.png  reruns.png  lr.png  report.html
    telemetry_update_ratio.png          with telemetry: the reruns' update/parameter ratios

With ``tensorboard=DIR``, each run's event files go to ``DIR/trials/<optimizer>/trial<k>``,
``DIR/reruns/<optimizer>/seed<s>`` and ``DIR/defaults/<spec>/seed<s>``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimlab.errors import UserError
from optimlab.lab import results
from optimlab.lab.store import pid_alive
from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.plan import PlannedOptimizer, plan_tune

STATE_FILE = "tune.json"
STUDY_FILE = "study.sqlite"


@dataclass
class TuneResult:
    """What :func:`tune` returns; ``optimizers`` is results.json's list."""

    out_dir: Path
    config: TuneConfig
    optimizers: list[dict[str, Any]]
    ranking: dict[str, list[str]]
    report_path: Path
    experiment_id: int

    def table(self) -> str:
        from optimlab.lab.tune.summary import format_table

        return format_table(self.optimizers, self.config)


def default_out_dir() -> Path:
    """``runs/<YYYYmmdd-HHMMSS>-tune``, with ``-2``, ``-3``… when it exists."""
    base = Path("runs") / (time.strftime("%Y%m%d-%H%M%S") + "-tune")
    out, i = base, 1
    while out.exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def _check_backend(config: TuneConfig) -> None:
    if config.backend != "ray":
        if config.ray_address is not None:
            raise UserError("--ray-address needs --backend ray")
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'optimlab[ray]'") from None
    if config.ray_address is not None:
        from optimlab.lab.tune.backends import check_ray_address

        check_ray_address(config.ray_address)


def _load_state(out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.is_file():
        raise UserError(f"--resume {out}: no {STATE_FILE} there; not a tune folder")
    try:
        state = dict(json.loads(path.read_text()))
        TuneConfig.from_dict(state["config"], source=str(path))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"--resume {out}: {path} is damaged ({e})") from None
    pid, host = state.get("pid"), state.get("host")
    if pid and host == socket.gethostname() and pid != os.getpid() and pid_alive(int(pid)):
        raise UserError(f"--resume {out}: process {pid} is still tuning there")
    return state


def _check_out(out: Path, force: bool) -> None:
    """compare's rules for ``--out``: a folder that holds files needs ``--force``, which
    empties only a tune's folder (one holding tune.json)."""
    from optimlab.lab.compare import check_out_dir

    if not force and (out / STATE_FILE).exists():
        raise UserError(f"--out {out} already holds a tune; continue it with --resume {out}, "
                        "add --force to start afresh, or choose another --out")
    check_out_dir(out, explicit=True, force=force, state_file=STATE_FILE, what="tune")


def run_tune(config: TuneConfig, *, out_dir: str | Path | None = None,
         store_path: str | Path | None = "runs/optimlab.sqlite", resume: bool = False,
         force: bool = False, log: Callable[[str], None] | None = None) -> TuneResult:
    """Run (or, with ``resume=True``, finish) the tune ``config`` describes.

    Every input is checked before anything is written (UserError). An ``out_dir`` holding
    files is refused unless ``force`` (which empties a previous tune's folder first).
    ``store_path`` None keeps no run store; ``log`` receives one line per finished trial and
    rerun (and per ``lr=find`` range test, run before the search spaces are planned).
    """
    import torch

    from optimlab.data import load_dataset
    from optimlab.engine.tensorboard import check_log_dir
    from optimlab.lab.compare import make_out_dir, resolve_device
    from optimlab.lab.tune.lr_find import resolve_tune_lr_find
    from optimlab.lab.tune.plan import bind_schedule, plan_schedule
    from optimlab.models import build_model

    say = log or (lambda _line: None)
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    if resume and force:
        raise UserError("--force starts afresh and --resume continues: choose one")
    saved = _load_state(out) if resume else {}
    if not resume:
        _check_out(out, force)
    if config.tensorboard is not None:
        check_log_dir(config.tensorboard)
    device = resolve_device(config.device)
    if not resume:  # tune.json then saves the ranges found, so --resume repeats no test
        config, found = resolve_tune_lr_find(config, device=device, log=say)
        saved = {"lr_find": found}
    planned = plan_tune(config)
    schedule = plan_schedule(config)
    data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed,
                        device=device)
    model = build_model(config.model, data.input_shape, data.num_outputs, seed=config.seed)
    schedule = bind_schedule(schedule, config, planned, model.to(device), data)
    target = config.target_pair()
    if data.task != "classification" and "val_accuracy" in (config.metric, target and target[0]):
        raise UserError(f"{config.dataset} is a regression dataset: it has no val_accuracy; "
                        "use --metric val_loss (and a val_loss target)")
    _check_backend(config)

    if not resume:
        out = make_out_dir(out, explicit=True, force=force)
    threads = torch.get_num_threads()
    try:
        return _run(config, planned, out, saved, store_path, device, data.task,
                    list(data.class_names), say, schedule)
    finally:
        torch.set_num_threads(threads)


def resume_tune(out_dir: str | Path, *, store_path: str | Path | None = None,
                overrides: dict[str, Any] | None = None,
                log: Callable[[str], None] | None = None) -> TuneResult:
    """Finish the tune in ``out_dir``; ``overrides`` may change only how it runs
    (workers, backend, ray_address), never what it computes."""
    out = Path(out_dir)
    state = _load_state(out)
    raw = dict(state["config"])
    for key, value in (overrides or {}).items():
        if key not in ("workers", "backend", "ray_address"):
            raise UserError(f"--resume uses the config saved in {out}; drop --{key}")
        raw[key] = value
    config = TuneConfig.from_dict(raw, source=str(out / STATE_FILE))
    store = store_path if store_path is not None else state.get("store")
    return run_tune(config, out_dir=out, store_path=store, resume=True, log=log)


def _run(config: TuneConfig, planned: list[PlannedOptimizer], out: Path, saved: dict[str, Any],
         store_path: str | Path | None, device: str, task: str, class_names: list[str],
         say: Callable[[str], None], schedule: Any = None) -> TuneResult:
    from optimlab.lab.store import RunStore
    from optimlab.lab.tune import driver
    from optimlab.lab.tune.backends import make_backend
    from optimlab.lab.tune.study import open_storage, quiet_optuna

    quiet_optuna()
    store = RunStore(store_path) if store_path is not None else None
    store_abs = None if store_path is None else str(Path(store_path).resolve())
    exp_id = int(saved.get("experiment_id") or 0)
    if store is not None and (not exp_id or saved.get("store") != store_abs):
        exp_id = store.add_experiment({"command": "tune", **config.to_dict()}, str(out))
    results.write_json(out / STATE_FILE, {"config": config.to_dict(), "experiment_id": exp_id,
                                          "store": store_abs, "pid": os.getpid(),
                                          "host": socket.gethostname(),
                                          "lr_find": saved.get("lr_find", [])})
    workers = config.resolved_workers()
    per_worker = max(1, config.threads // workers)
    backend = make_backend(config.backend, workers, config.ray_address, per_worker)
    ctx = driver.Context(config, out, backend, store, exp_id, device, per_worker, say,
                         schedule)
    finished = False
    try:
        storage = open_storage((out / STUDY_FILE).resolve())
        trials = driver.run_trials(ctx, planned, storage)
        best = {i: driver.best_trial(t, config.metric) for i, t in trials.items()}
        reruns = driver.run_reruns(ctx, planned, best)
        finished = True
    finally:  # on Ctrl-C or an error, do not wait for the trials still running
        backend.close(wait=finished)
        if store is not None:
            store.close()
    execution = {"workers": workers, "backend": config.backend,
                 "ray_address": config.ray_address, "threads_per_worker": per_worker}
    return _write_outputs(out, config, planned, trials, best, reruns, device, task,
                          class_names, exp_id, execution, saved.get("lr_find", []))


def _write_outputs(out: Path, config: TuneConfig, planned: list[PlannedOptimizer],
                   trials: dict[int, list[dict[str, Any]]],
                   best: dict[int, dict[str, Any] | None],
                   reruns: dict[str, list[dict[str, Any]]], device: str, task: str,
                   class_names: list[str], exp_id: int, execution: dict[str, Any],
                   lr_find: list[dict[str, Any]]) -> TuneResult:
    from optimlab.lab.compare import environment
    from optimlab.lab.tune import outputs
    from optimlab.lab.tune.driver import direction, rerun_seeds
    from optimlab.lab.tune.summary import optimizer_entry, ranking

    entries = [results.json_safe(optimizer_entry(opt, trials[opt.index], best[opt.index],
                                                 reruns, config)) for opt in planned]
    order = ranking(entries, config.target_pair())
    env = environment(device)
    outputs.write_results(out, {
        "optimizers": entries, "ranking": order, "metric": config.metric,
        "direction": direction(config.metric), "sampler": config.sampler,
        "pruner": config.pruner, "search_seed": config.seed,
        "rerun_seeds": rerun_seeds(config), "target": config.target, "lr_find": lr_find,
        "config": config.to_dict(), "execution": execution, "environment": env,
        "experiment_id": exp_id, "task": task, "class_names": class_names,
        "argv": sys.argv, "pid": os.getpid()})
    outputs.write_trials_csv(out / "trials.csv", entries, config.metric)
    written = outputs.write_plots(out, entries, config, task)
    path = outputs.write_report(out, entries, config, env, written)
    return TuneResult(out_dir=out, config=config, optimizers=entries, ranking=order,
                      report_path=path, experiment_id=exp_id)

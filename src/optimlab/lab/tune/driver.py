"""The driver: asks Optuna for trials, hands them to a backend, tells Optuna the results.

Every trial has a *position* 0 … trials-1 in its optimizer's budget (an Optuna user attribute,
set when the trial is created). A trial counts once its record file
``trials/<optimizer>/trial<position>.json`` exists; the record is written before Optuna is told,
so a kill between the two loses nothing. On resume, a trial left ``RUNNING`` without a record
is marked failed in Optuna, does not count, and its position is asked again — for the planned
samplers with the same point, so the tune ends with the same trials as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from optimlab.errors import UserError
from optimlab.lab import results
from optimlab.lab.spec import Spec
from optimlab.lab.store import RunStore
from optimlab.lab.tune.backends import Backend
from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.plan import PlannedOptimizer
from optimlab.lab.tune.study import (
    PLANNED_SAMPLERS,
    decode,
    make_sampler,
    optuna_distributions,
    plan_points,
    suggest,
    trial_seed,
)
from optimlab.lab.tune.trial import Pruning, Task

POSITION = "position"


def direction(metric: str) -> Literal["minimize", "maximize"]:
    return "maximize" if metric == "val_accuracy" else "minimize"


def worst_value(metric: str) -> float:
    """What a diverged trial is told: the worst possible value of the metric."""
    return 0.0 if metric == "val_accuracy" else math.inf


def trial_value(record: dict[str, Any], metric: str) -> float | None:
    """The last epoch's validation metric; the worst value when the run diverged."""
    if record["status"] == "diverged":
        return worst_value(metric)
    values = [v for v in record["history"][metric] if v is not None]
    return float(values[-1]) if values else None


def read_record(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as e:
        raise UserError(f"--resume: {path} is damaged ({e})") from None


@dataclass
class Context:
    """What the driver loops share."""

    config: TuneConfig
    out: Path
    backend: Backend
    store: RunStore | None
    experiment_id: int
    device: str
    threads: int  # per worker
    say: Callable[[str], None]
    schedule: Any = None  # the tune's Schedule, bound to the run length (or None)

    def task(self, kind: str, key: str, name: str, spec: Any, seed: int, **kw: Any) -> Task:
        """A task named ``key``; its TensorBoard folder mirrors its record's path under out."""
        c = self.config
        board = None
        if c.tensorboard is not None:
            board = str(Path(c.tensorboard) / ("trials/" + key if kind == "trial" else key))
        return Task(kind=kind, key=key, name=name, spec=spec, dataset=c.dataset,
                    model=c.model, epochs=c.epochs, batch_size=c.batch_size, seed=seed,
                    metric=c.metric, device=self.device, data_dir=c.data_dir,
                    threads=self.threads, schedule=self.schedule,
                    schedule_every=c.schedule_every, telemetry=c.telemetry,
                    tensorboard=board, **kw)

    def start_run(self, task: Task) -> int | None:
        if self.store is None:
            return None
        config = {"command": "tune", "kind": task.kind, "dataset": task.dataset,
                  "model": task.model, "optimizer": task.spec.text, "seed": task.seed,
                  "epochs": task.epochs, "batch_size": task.batch_size,
                  "scheduler": self.config.scheduler,
                  "schedule_every": self.config.schedule_every}
        run_id = self.store.find_run(self.experiment_id, task.name, task.seed)
        if run_id is not None:
            self.store.reclaim_run(run_id)
            return run_id
        return self.store.start_run(self.experiment_id, name=task.name,
                                    optimizer=task.spec.name, hparams=task.spec.hparams,
                                    seed=task.seed, config=config)

    def finish_run(self, run_id: int | None, record: dict[str, Any]) -> None:
        if self.store is None or run_id is None:
            return
        h = record["history"]
        for i, epoch in enumerate(h["epoch"]):
            self.store.log_epoch(run_id, epoch, {k: h[k][i] for k in h if k != "telemetry"})
        status = "failed" if record["status"] == "failed" else record["status"]
        result = {k: record.get(k) for k in ("test_loss", "test_accuracy", "confusion_matrix",
                                             "epochs_run", "spec", "value", "error")}
        self.store.finish_run(run_id, status, wall_seconds=record["wall_seconds"],
                              result=results.json_safe({**result, "task": record.get("task")}))


def run_tasks(ctx: Context, tasks: Iterator[tuple[Task, Callable[[dict[str, Any]], None]]]
              ) -> None:
    """Keep ``workers`` tasks in flight; call each task's ``done`` with its record."""
    in_flight: dict[Any, tuple[Task, int | None, Callable[[dict[str, Any]], None]]] = {}
    pending = True
    try:
        while pending or in_flight:
            while pending and len(in_flight) < ctx.backend.workers:
                nxt = next(tasks, None)
                if nxt is None:
                    pending = False
                    break
                task, done = nxt
                run_id = ctx.start_run(task)
                in_flight[ctx.backend.submit(task)] = (task, run_id, done)
            if in_flight:
                handle, record = ctx.backend.wait_one(list(in_flight))
                task, run_id, done = in_flight.pop(handle)
                record["store_run_id"] = run_id
                done(record)
                ctx.finish_run(run_id, record)
    finally:
        if ctx.store is not None:
            for _, run_id, _ in in_flight.values():
                if run_id is not None:
                    ctx.store.finish_run(run_id, "interrupted")


# -- trials ----------------------------------------------------------------------------------

def trial_path(out: Path, opt: PlannedOptimizer, position: int) -> Path:
    return out / "trials" / opt.folder / f"trial{position}.json"


class OptimizerStudy:
    """One optimizer's Optuna study and its positions."""

    def __init__(self, ctx: Context, opt: PlannedOptimizer, storage: Any) -> None:
        import optuna

        c = ctx.config
        self.ctx, self.opt = ctx, opt
        self.dists = optuna_distributions(opt.space, c.sampler, c.trials)
        self.points = (plan_points(opt.space, c.sampler, c.trials, c.seed)
                       if c.sampler in PLANNED_SAMPLERS else None)
        self.study = optuna.create_study(study_name=opt.study_name, storage=storage,
                                         direction=direction(c.metric), load_if_exists=True,
                                         sampler=make_sampler("random", c.seed))
        self.live: dict[int, Any] = {}  # position → Trial asked by this driver

    def _recover(self) -> set[int]:
        """Positions already taken; settle trials a killed driver left running."""
        import optuna

        taken: set[int] = set()
        for t in self.study.get_trials(deepcopy=False):
            pos = t.user_attrs.get(POSITION)
            if t.state == optuna.trial.TrialState.WAITING or pos is None:
                continue
            record = read_record(trial_path(self.ctx.out, self.opt, pos))
            if t.state == optuna.trial.TrialState.RUNNING and pos not in self.live:
                if record is None:  # killed mid-trial: abandon; its position is asked again
                    self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                    continue
                self._tell(t.number, record)
            if record is not None or t.state == optuna.trial.TrialState.RUNNING:
                taken.add(pos)
        return taken

    def _ask(self, taken: set[int]) -> tuple[int, Any]:
        import optuna

        c = self.ctx.config
        free = min(set(range(c.trials)) - taken)
        waiting = self.study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.WAITING,))
        if self.points is not None and not waiting:
            self.study.enqueue_trial(self.points[free], user_attrs={POSITION: free})
        elif self.points is None:
            self.study.sampler = make_sampler("tpe", trial_seed(c.seed, free))
        trial = self.study.ask()
        suggest(trial, self.dists)
        if POSITION not in trial.user_attrs:
            trial.set_user_attr(POSITION, free)
        return int(trial.user_attrs[POSITION]), trial

    def tasks(self) -> Iterator[tuple[Task, Callable[[dict[str, Any]], None]]]:
        """Ask trials until every position is taken; each as a task and its callback."""
        taken = self._recover()  # once: only a killed driver leaves trials to settle
        while len(taken) < self.ctx.config.trials:
            position, trial = self._ask(taken)
            taken.add(position)
            self.live[position] = trial
            yield self._task(position, trial), self._done_callback(position, trial)

    def _task(self, position: int, trial: Any) -> Task:
        params = decode(self.opt.space, trial.params)
        spec = self.opt.space.resolve(params)
        pruning = None
        if self.ctx.config.pruner != "none":
            import optuna

            finished = [(t.user_attrs[POSITION], t) for t in self.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                        optuna.trial.TrialState.PRUNED))
                if t.user_attrs.get(POSITION, self.ctx.config.trials) < position]
            pruning = Pruning(self.opt.study_name, direction(self.ctx.config.metric),
                              self.ctx.config.pruner, position, tuple(finished))
        return self.ctx.task("trial", f"{self.opt.folder}/trial{position}",
                             f"{self.opt.name} [trial {position}]", spec,
                             self.ctx.config.seed, pruning=pruning,
                             extra={"position": position, "params": params})

    def _done_callback(self, position: int, trial: Any) -> Callable[[dict[str, Any]], None]:
        def done(record: dict[str, Any]) -> None:
            metric = self.ctx.config.metric
            record["value"] = trial_value(record, metric)
            record["optuna_number"] = trial.number
            results.write_json(trial_path(self.ctx.out, self.opt, position), record)
            if self.ctx.config.pruner != "none":  # the curve, for pruning later trials
                for epoch, v in zip(record["history"]["epoch"], record["history"][metric],
                                    strict=True):
                    if v is not None and math.isfinite(v):
                        trial.report(float(v), int(epoch))
            self._tell(trial.number, record)
            self.live.pop(position, None)
            self.ctx.say(_trial_line(self.opt, position, self.ctx.config, record))
        return done

    def _tell(self, number: int, record: dict[str, Any]) -> None:
        import optuna

        state = optuna.trial.TrialState
        if record["status"] == "pruned":
            self.study.tell(number, state=state.PRUNED)
        elif record["status"] == "failed" or record.get("value") is None:
            self.study.tell(number, state=state.FAIL)
        else:
            self.study.tell(number, record["value"])

    def records(self) -> list[dict[str, Any]]:
        """Every counted trial's record, by position."""
        found = [read_record(trial_path(self.ctx.out, self.opt, p))
                 for p in range(self.ctx.config.trials)]
        return [r for r in found if r is not None]


def _trial_line(opt: PlannedOptimizer, position: int, config: TuneConfig,
                record: dict[str, Any]) -> str:
    value = record.get("value")
    shown = "-" if value is None else f"{value:.4g}"
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in record["params"].items())
    return (f"{opt.name} trial {position + 1}/{config.trials} ({params}): {config.metric} "
            f"{shown}, {record['status']}, {record['epochs_run']} epochs "
            f"({record['wall_seconds']:.1f} s)")


def run_trials(ctx: Context, planned: list[PlannedOptimizer], storage: Any
               ) -> dict[int, list[dict[str, Any]]]:
    """All optimizers' trials (in order, ``workers`` at a time); their records by index."""
    studies = [OptimizerStudy(ctx, opt, storage) for opt in planned]

    def all_tasks() -> Iterator[tuple[Task, Callable[[dict[str, Any]], None]]]:
        for s in studies:
            yield from s.tasks()

    run_tasks(ctx, all_tasks())
    return {s.opt.index: s.records() for s in studies}


# -- reruns ----------------------------------------------------------------------------------

def best_trial(trials: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The finished, non-diverged trial with the best value (lowest position on ties)."""
    ok = [t for t in trials if t["status"] in ("finished", "early_stopped")
          and t.get("value") is not None and math.isfinite(t["value"])]
    if not ok:
        return None
    sign = -1.0 if metric == "val_accuracy" else 1.0
    return min(ok, key=lambda t: (sign * t["value"], t["position"]))


def rerun_seeds(config: TuneConfig) -> list[int]:
    """Seeds the search did not use: seed+1 … seed+seeds."""
    return list(range(config.seed + 1, config.seed + 1 + config.seeds))


def run_reruns(ctx: Context, planned: list[PlannedOptimizer],
               best: dict[int, dict[str, Any] | None]) -> dict[str, list[dict[str, Any]]]:
    """Each best config (and each covered default) on every rerun seed; records by key."""
    from optimlab.lab.spec import folder_name

    out: dict[str, list[dict[str, Any]]] = {}
    todo: list[Task] = []
    for opt in planned:
        chosen = best[opt.index]
        runs: list[tuple[str, str, Spec]] = []
        if chosen is not None:
            tuned = opt.space.resolve(chosen["params"])
            runs.append(("tuned", f"{opt.name} [tuned]", tuned))
        runs += [("default", f"{d.label} [default]", d) for d in opt.defaults]
        for kind, name, spec in runs:
            group = f"reruns/{opt.folder}" if kind == "tuned" else (
                f"defaults/{folder_name(spec.label)}")
            for seed in rerun_seeds(ctx.config):
                task = ctx.task(kind, f"{group}/seed{seed}", name, spec, seed, test=True,
                                extra={"group": group})
                out.setdefault(group, [])
                if not any(t.key == task.key for t in todo):
                    todo.append(task)

    def done(record: dict[str, Any]) -> None:
        results.write_json(ctx.out / f"{record['key']}.json", record)
        ctx.say(f"rerun {record['name']} seed {record['seed']}: {record['status']}, test acc "
                + ("-" if record.get("test_accuracy") is None
                   else f"{100 * record['test_accuracy']:.1f}%"))

    def tasks() -> Iterator[tuple[Task, Callable[[dict[str, Any]], None]]]:
        for task in todo:
            if not (ctx.out / f"{task.key}.json").is_file():
                yield task, done

    run_tasks(ctx, tasks())
    for task in todo:
        record = read_record(ctx.out / f"{task.key}.json")
        if record is not None:
            out[task.extra["group"]].append(record)
    return out


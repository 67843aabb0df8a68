"""Learning-rate recipes by name and chains of torch schedulers, built knowing the run's length.

A *schedule spec* is one of

- a torch scheduler by name (:mod:`optimlab.engine.schedules`), e.g. ``steplr:step_size=10``;
- a recipe: ``warmup_cosine``, ``warmup_linear`` or ``wsd`` (below), e.g.
  ``warmup_cosine:warmup=5,min_lr=1e-5``;
- a chain of torch schedulers joined by ``then``, run one after the other with
  ``SequentialLR``: ``linearlr:start_factor=0.1,total_iters=5 then cosineannealinglr``.
  Every part but the last runs for its written length (``total_iters=`` for linearlr,
  constantlr and polynomiallr, ``T_max=`` for cosineannealinglr); the last runs to the end.

Lengths count *scheduler steps*: epochs by default, batches with ``schedule_every="step"``.
The run's length ``T`` (epochs, or epochs × steps per epoch) is known when the scheduler is
built, so the user never computes a milestone: a length left out is filled with what remains
of the run (``T_max`` of cosineannealinglr, ``total_steps`` of onecyclelr).

Recipes, with base rate η (the optimizer's lr), warmup W, run length T, η_min = ``min_lr``:

- ``warmup_cosine:warmup=W[,min_lr=η_min]`` — η·(t+1)/(W+1) for t < W (LinearLR from
  1/(W+1)), then η_min + ½(η − η_min)(1 + cos(π(t−W)/(T−W))) (CosineAnnealingLR).
- ``warmup_linear:warmup=W[,min_lr=η_min]`` — the same warmup, then a straight line from η
  to η_min at t = T (LinearLR).
- ``wsd:warmup=W[,decay=0.2,min_lr=η_min,shape=linear|cosine]`` — warmup, stable at η
  (ConstantLR with factor 1), then a final decay over D = round(decay·T) steps to η_min,
  linear (default) or cosine. Warmup–stable–decay: Hägele et al. 2024, "Scaling Laws and
  Compute-Optimal Training Beyond Fixed Training Durations" (arXiv:2405.18392), where a 20 %
  cooldown matches cosine; Hu et al. 2024, MiniCPM (arXiv:2404.06395).

The warmup never takes a step at lr 0 (torch's LinearLR needs a start factor > 0): its first
step uses η/(W+1). As with every torch scheduler the rate reaches η_min at t = T, one step
after the last one taken. Every piece is torch's own class; nothing here computes a learning
rate itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.optim import lr_scheduler as lrs

from optimlab.engine.arguments import check_arguments, shown
from optimlab.engine.schedules import Schedule, parse_schedule, scheduler_class, scheduler_names
from optimlab.errors import UserError

EVERY = ("epoch", "step")
_THEN = re.compile(r"\s+then\s+", re.IGNORECASE)
#: the argument that says how long a scheduler runs (a chain's milestones come from it)
_LENGTH_ARG = {lrs.LinearLR: "total_iters", lrs.ConstantLR: "total_iters",
               lrs.PolynomialLR: "total_iters", lrs.CosineAnnealingLR: "T_max"}
#: arguments filled with the remaining run length when left out
_FILLED_ARG = {lrs.CosineAnnealingLR: "T_max", lrs.OneCycleLR: "total_steps"}


@dataclass(frozen=True)
class RunLength:
    """How many scheduler steps a run takes: epochs, or epochs × steps per epoch."""

    epochs: int
    steps_per_epoch: int = 1
    every: str = "epoch"  # "epoch" or "step": when the scheduler steps

    @property
    def total(self) -> int:
        """T, the number of scheduler steps in the run."""
        return self.epochs * (self.steps_per_epoch if self.every == "step" else 1)

    @property
    def unit(self) -> str:
        return "steps" if self.every == "step" else "epochs"


@dataclass(frozen=True)
class Part:
    """One scheduler (or recipe) of a schedule spec: its name and arguments as written."""

    name: str
    hparams: dict[str, Any]
    text: str


@dataclass(frozen=True)
class Composite(Schedule):
    """A schedule that needs the run's length: a recipe, a chain, or a torch scheduler whose
    length argument was left out. :func:`for_run` binds the length; then it is a
    :class:`~optimlab.engine.schedules.Schedule` like any other (``build``, ``check``)."""

    parts: tuple[Part, ...] = ()
    length: RunLength | None = None

    @property
    def name(self) -> str:
        if self.parts[0].name.lower() in RECIPES:
            return self.parts[0].name.lower()
        return " then ".join(scheduler_class(p.name).__name__ for p in self.parts)

    def build(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.length is None:  # create_scheduler(name, opt) outside a run
            fill = _FILLED_ARG.get(self.cls)
            need = f"; give {fill}=…" if fill else ""
            raise UserError(f"scheduler {shown(self.text, 60)} takes its length from the run (fit, "
                            f"compare, optimlab schedule --epochs){need}")
        first = self.parts[0]
        if first.name.lower() in RECIPES:
            return RECIPES[first.name.lower()](optimizer, self.length, **first.hparams)
        if len(self.parts) == 1:
            return _torch_part(first, optimizer, self.length.total)
        return _chain(self, optimizer, self.length)


def check_every(every: str) -> str:
    """``epoch`` or ``step``, else UserError."""
    if every not in EVERY:
        raise UserError(f"schedule_every must be one of {', '.join(EVERY)}, got {shown(every)}")
    return every


def recipe_names() -> tuple[str, ...]:
    return tuple(sorted(RECIPES))


def _unknown(name: str) -> UserError:
    valid = sorted(c.__name__.lower() for c in {scheduler_class(n) for n in scheduler_names()})
    return UserError(f"unknown scheduler {shown(name)}; valid: recipes "
                     f"{', '.join(recipe_names())}; torch's {', '.join(valid)}")


def parse_scheduler_spec(text: str) -> Schedule:
    """Parse a schedule spec written as text (``name:key=value,…``, a recipe, ``A then B``).

    Names, argument names and types are checked here; values that need the optimizer or the
    run's length when it is built (``for_run``, then ``check``/``build``).
    """
    from optimlab.lab.spec import parse_spec  # the lab's grammar; imported when text arrives

    pieces = _THEN.split(text.strip())
    parts = tuple(Part(s.name, s.hparams, s.text)
                  for s in (parse_spec(p, kind="scheduler") for p in pieces))
    if len(parts) == 1:
        return parse_schedule(parts[0].name, parts[0].hparams, text=text.strip())
    for part in parts:
        if part.name.lower() in RECIPES:
            raise UserError(f"recipe {part.name!r} cannot be chained with 'then' in "
                            f"{shown(text, 60)}; chain torch schedulers only")
        try:
            cls = scheduler_class(part.name)
        except UserError:
            raise _unknown(part.name) from None
        if cls is lrs.ReduceLROnPlateau:
            raise UserError(f"ReduceLROnPlateau cannot be chained in {shown(text, 60)}: it "
                            "steps with the validation loss")
        check_arguments(cls, part.hparams, what=f"scheduler {cls.__name__}")
    return Composite(lrs.SequentialLR, {"spec": text.strip()}, text.strip(), parts)


def schedule_for_name(name: str, kwargs: dict[str, Any], text: str) -> Composite | None:
    """The :class:`Composite` for a recipe name, or a torch scheduler missing its length
    argument (``T_max``, ``total_steps``); None for a scheduler complete without the run.
    (:func:`optimlab.engine.schedules.parse_schedule` asks this first.)"""
    spec = Part(name, dict(kwargs), text or name)
    if name.lower() in RECIPES:
        _only(name.lower(), kwargs, RECIPE_ARGS[name.lower()])
        return Composite(lrs.SequentialLR, dict(kwargs), spec.text, (spec,))
    try:
        cls = scheduler_class(name)
    except UserError:
        raise _unknown(name) from None
    fill = _FILLED_ARG.get(cls)
    if fill is None or fill in kwargs or "epochs" in kwargs:
        return None
    check_arguments(cls, kwargs, what=f"scheduler {cls.__name__}")
    return Composite(cls, dict(kwargs), spec.text, (spec,))


def for_run(schedule: Schedule, length: RunLength) -> Schedule:
    """``schedule`` knowing the run's length (a plain torch scheduler needs none)."""
    check_every(length.every)
    return replace(schedule, length=length) if isinstance(schedule, Composite) else schedule


def build_scheduler(schedule: Schedule | str, optimizer: torch.optim.Optimizer,
                    length: RunLength) -> Any:
    """The torch scheduler ``schedule`` describes on ``optimizer`` for a run of ``length``.

    Raises UserError for bad arguments, lengths that do not fit the run, ``min_lr`` above the
    optimizer's lr. Example::

        sched = build_scheduler("warmup_cosine:warmup=5,min_lr=1e-5", opt, RunLength(30))
    """
    parsed = parse_scheduler_spec(schedule) if isinstance(schedule, str) else schedule
    return for_run(parsed, length).build(optimizer)


def _torch_part(part: Part, optimizer: torch.optim.Optimizer, remaining: int) -> Any:
    """One torch scheduler, its length argument filled with ``remaining`` when left out."""
    cls = scheduler_class(part.name)
    kwargs = dict(part.hparams)
    fill = _FILLED_ARG.get(cls)
    if fill is not None and fill not in kwargs and "epochs" not in kwargs:
        kwargs[fill] = remaining
    if cls is lrs.OneCycleLR and "max_lr" not in kwargs:
        kwargs["max_lr"] = [g["lr"] for g in optimizer.param_groups]
    return parse_schedule(part.name, kwargs, text=part.text).build(optimizer)


def _chain(spec: Composite, optimizer: torch.optim.Optimizer, length: RunLength) -> Any:
    """``A then B then …``: each part but the last for its written length, with SequentialLR."""
    milestones: list[int] = []
    for part in spec.parts[:-1]:
        cls = scheduler_class(part.name)
        arg = _LENGTH_ARG.get(cls)
        n = part.hparams.get(arg) if arg else None
        if arg is None or n is None:
            needs = ", ".join(f"{c.__name__.lower()} ({a}=…)" for c, a in _LENGTH_ARG.items())
            raise UserError(f"in the chain {shown(spec.text, 60)}, {part.name!r} needs a "
                            f"written length to end at; chainable before 'then': {needs}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"{part.name}: {arg} must be an integer >= 1, got {shown(n)}")
        milestones.append((milestones[-1] if milestones else 0) + n)
    _check_fits(milestones[-1], 1, length, what=f"the chain's first parts ({shown(spec.text, 60)})")
    schedulers = [_torch_part(p, optimizer, length.total - milestones[-1]) for p in spec.parts]
    return lrs.SequentialLR(optimizer, schedulers, milestones=milestones)


def _check_fits(used: int, after: int, length: RunLength, what: str) -> None:
    if used + after > length.total:
        raise UserError(f"{what} ({used} {length.unit}) does not fit the run of "
                        f"{length.total} {length.unit}: at least {after} must remain after it")


# -- recipes ---------------------------------------------------------------------------------

def _base_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    return [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]


def _int_arg(recipe: str, key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{recipe}: {key} must be an integer >= {low}, got {shown(value)}")
    return value


def _min_lr(recipe: str, value: Any, optimizer: torch.optim.Optimizer) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UserError(f"{recipe}: min_lr must be a number >= 0, got {shown(value)}")
    top = min(_base_lrs(optimizer))
    if value > top:
        raise UserError(f"{recipe}: min_lr={value:g} is above the optimizer's lr={top:g}; "
                        "min_lr must be <= lr")
    return float(value)


def _end_factor(recipe: str, min_lr: float, optimizer: torch.optim.Optimizer) -> float:
    """min_lr as LinearLR's end factor (one factor for all groups: their lrs must agree)."""
    bases = _base_lrs(optimizer)
    if min_lr > 0 and len(set(bases)) > 1:
        raise UserError(f"{recipe}: min_lr > 0 needs every param group at the same lr, got "
                        f"{bases}; use min_lr=0 or a chain with cosineannealinglr:eta_min=…")
    return min_lr / bases[0] if bases[0] > 0 else 0.0


def _warmup(optimizer: torch.optim.Optimizer, warmup: int) -> list[Any]:
    """LinearLR from η/(W+1) to η over W steps; none when W = 0."""
    if warmup == 0:
        return []
    return [lrs.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0,
                         total_iters=warmup)]


def _in_sequence(optimizer: torch.optim.Optimizer, phases: list[tuple[Any, int]]) -> Any:
    """Phases ``(scheduler, length)`` one after another (SequentialLR; one phase alone)."""
    if len(phases) == 1:
        return phases[0][0]
    ends, at = [], 0
    for _, n in phases[:-1]:
        at += n
        ends.append(at)
    return lrs.SequentialLR(optimizer, [s for s, _ in phases], milestones=ends)


def _needs_warmup(recipe: str, kwargs: dict[str, Any]) -> int:
    if "warmup" not in kwargs:
        raise UserError(f"{recipe} needs warmup=N (scheduler steps: epochs, or batches with "
                        f"schedule_every=step), e.g. {recipe}:warmup=5")
    return _int_arg(recipe, "warmup", kwargs["warmup"], 0)


def _only(recipe: str, kwargs: dict[str, Any], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise UserError(f"unknown argument {unknown[0]!r} for recipe {recipe}; "
                        f"valid: {', '.join(valid)}")


def warmup_cosine(optimizer: torch.optim.Optimizer, length: RunLength, **kwargs: Any) -> Any:
    """Linear warmup over ``warmup`` steps, then cosine annealing to ``min_lr`` at the end."""
    _only("warmup_cosine", kwargs, RECIPE_ARGS["warmup_cosine"])
    w = _needs_warmup("warmup_cosine", kwargs)
    eta_min = _min_lr("warmup_cosine", kwargs.get("min_lr", 0.0), optimizer)
    _check_fits(w, 1, length, what=f"warmup={w}")
    rest = length.total - w
    cosine = lrs.CosineAnnealingLR(optimizer, T_max=rest, eta_min=eta_min)
    return _in_sequence(optimizer, [(s, w) for s in _warmup(optimizer, w)] + [(cosine, rest)])


def warmup_linear(optimizer: torch.optim.Optimizer, length: RunLength, **kwargs: Any) -> Any:
    """Linear warmup over ``warmup`` steps, then a linear decay to ``min_lr`` at the end."""
    _only("warmup_linear", kwargs, RECIPE_ARGS["warmup_linear"])
    w = _needs_warmup("warmup_linear", kwargs)
    eta_min = _min_lr("warmup_linear", kwargs.get("min_lr", 0.0), optimizer)
    _check_fits(w, 1, length, what=f"warmup={w}")
    rest = length.total - w
    decay = lrs.LinearLR(optimizer, start_factor=1.0, total_iters=rest,
                         end_factor=_end_factor("warmup_linear", eta_min, optimizer))
    return _in_sequence(optimizer, [(s, w) for s in _warmup(optimizer, w)] + [(decay, rest)])


def wsd(optimizer: torch.optim.Optimizer, length: RunLength, **kwargs: Any) -> Any:
    """Warmup, stable at the base lr, then the last ``decay`` fraction decays to ``min_lr``."""
    _only("wsd", kwargs, RECIPE_ARGS["wsd"])
    w = _needs_warmup("wsd", kwargs)
    eta_min = _min_lr("wsd", kwargs.get("min_lr", 0.0), optimizer)
    fraction, shape = kwargs.get("decay", 0.2), kwargs.get("shape", "linear")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not (
            0 < fraction <= 1):
        raise UserError(f"wsd: decay is the fraction of the run spent decaying, in (0, 1], "
                        f"got {fraction!r}")
    if shape not in ("linear", "cosine"):
        raise UserError(f"wsd: shape must be linear or cosine, got {shown(shape)}")
    d = max(1, round(fraction * length.total))
    _check_fits(w, d, length, what=f"warmup={w} before decay={fraction:g}")
    stable = length.total - w - d
    final: Any
    if shape == "cosine":
        final = lrs.CosineAnnealingLR(optimizer, T_max=d, eta_min=eta_min)
    else:
        final = lrs.LinearLR(optimizer, start_factor=1.0, total_iters=d,
                             end_factor=_end_factor("wsd", eta_min, optimizer))
    phases = [(s, w) for s in _warmup(optimizer, w)]
    if stable > 0:
        phases.append((lrs.ConstantLR(optimizer, factor=1.0, total_iters=stable), stable))
    return _in_sequence(optimizer, [*phases, (final, d)])


RECIPES: dict[str, Callable[..., Any]] = {
    "warmup_cosine": warmup_cosine, "warmup_linear": warmup_linear, "wsd": wsd,
}
RECIPE_ARGS = {"warmup_cosine": ("warmup", "min_lr"), "warmup_linear": ("warmup", "min_lr"),
               "wsd": ("warmup", "decay", "min_lr", "shape")}


def schedule_lrs(schedule: Schedule | str, length: RunLength, lr: float = 0.1) -> list[float]:
    """The lr of each scheduler step of a run, without training (a throwaway SGD at ``lr``).

    ``lrs[t]`` is the rate used by step t (an epoch, or a batch with ``every="step"``); per
    epoch it is the value the run history records as ``lr``.
    """
    parsed = parse_scheduler_spec(schedule) if isinstance(schedule, str) else schedule
    if parsed.per_validation:
        raise UserError("ReduceLROnPlateau follows the validation loss; it has no curve to "
                        "preview before training")
    if not lr > 0:
        raise UserError(f"lr must be > 0, got {lr!r}")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    bound = for_run(parsed, length)
    bound.check(opt, length.total)
    sched = bound.build(opt)
    out = []
    for _ in range(length.total):
        out.append(float(opt.param_groups[0]["lr"]))
        opt.step()  # keeps torch from warning that the scheduler stepped first
        sched.step()
    return out

"""A tune's plan: the parsed search specs, their names, studies and covered defaults.

Everything here is checked before the tune writes anything (specs, grid sizes, target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optimlab.errors import UserError
from optimlab.lab.config import DEFAULT_SUITE
from optimlab.lab.spec import Spec, folder_names, format_value, parse_spec, unique_names
from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.space import (
    Choice,
    Distribution,
    IntRange,
    SearchSpec,
    Slot,
    corner_values,
    parse_search_spec,
)
from optimlab.lab.tune.study import grid_axes

if TYPE_CHECKING:
    from optimlab.engine.schedules import Schedule


@dataclass(frozen=True)
class PlannedOptimizer:
    """One optimizer of the tune."""

    index: int
    space: SearchSpec
    name: str  # unique label (``sgd(lr=log(0.0001, 1), momentum=0.9)``)
    folder: str  # its folder under trials/ and reruns/
    defaults: tuple[Spec, ...]  # default-compare specs whose point lies in the space

    @property
    def study_name(self) -> str:
        return f"{self.index}-{self.folder}"


def _inside(value: object, d: Distribution) -> bool:
    if isinstance(d, Choice):
        return any(format_value(value) == format_value(v) for v in d.values)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(d, IntRange) and not isinstance(value, int):
        return False
    return d.low <= value <= d.high


def _covers(space: SearchSpec, value: object, template: object) -> bool:
    if isinstance(template, Slot):
        return _inside(value, space.params[template.param])
    if isinstance(template, tuple):
        return (isinstance(value, tuple | list) and len(value) == len(template)
                and all(_covers(space, v, t) for v, t in zip(value, template, strict=True)))
    return format_value(value) == format_value(template)


def covered_defaults(space: SearchSpec) -> tuple[Spec, ...]:
    """The default compare's specs that are points of ``space`` (same name, same keys)."""
    found = []
    for text in DEFAULT_SUITE:
        spec = parse_spec(text)
        if (spec.name.lower() == space.name.lower()
                and set(spec.hparams) == set(space.template)
                and all(_covers(space, spec.hparams[k], t) for k, t in space.template.items())):
            found.append(spec)
    return tuple(found)


def plan_tune(config: TuneConfig) -> list[PlannedOptimizer]:
    """Parse every spec, check grids against ``--trials`` and the target; name the optimizers."""
    spaces = [parse_search_spec(text) for text in config.optimizer]
    if config.sampler == "grid":
        for space in spaces:
            grid_axes(space, config.trials)
    config.target_pair()
    names = unique_names([s.label for s in spaces])
    return [PlannedOptimizer(i, s, n, f, covered_defaults(s) if config.defaults else ())
            for i, (s, n, f) in enumerate(zip(spaces, names, folder_names(names),
                                              strict=True))]


def plan_schedule(config: TuneConfig) -> Schedule | None:
    """``--scheduler`` parsed once (names, arguments, ``--schedule-every``), as compare does.

    The scheduler's own values are fixed for the whole tune, not searched.
    """
    from optimlab.engine.recipes import check_every
    from optimlab.lab.spec import parse_scheduler_spec

    check_every(config.schedule_every)
    return parse_scheduler_spec(config.scheduler) if config.scheduler else None


def bind_schedule(schedule: Schedule | None, config: TuneConfig, planned: list[PlannedOptimizer],
                  model: Any, data: Any) -> Schedule | None:
    """The schedule knowing the run's length, rehearsed over the whole run on every optimizer
    built at each corner of its space (a ``min_lr`` above the lowest searched lr, a warmup
    longer than the run: refused before any trial). ``model`` is not changed."""
    from optimlab.engine.recipes import RunLength, for_run
    from optimlab.lab.spec import build_optimizer

    if schedule is None:
        return None
    steps_per_epoch = max(1, -(-len(data.train) // config.batch_size))
    length = RunLength(config.epochs, steps_per_epoch, config.schedule_every)
    bound = for_run(schedule, length)
    for opt in planned:
        for values in corner_values(opt.space):
            try:
                bound.check(build_optimizer(opt.space.resolve(values), model), length.total)
            except UserError as e:
                shown = ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
                raise UserError(f"--scheduler with {opt.name} at {shown}: {e}") from None
    return bound

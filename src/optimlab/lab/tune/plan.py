"""A tune's plan: the parsed search specs, their names, studies and covered defaults.

Everything here is checked before the tune writes anything (specs, grid sizes, target).
"""

from __future__ import annotations

from dataclasses import dataclass

from optimlab.lab.config import DEFAULT_SUITE
from optimlab.lab.spec import Spec, folder_names, format_value, parse_spec, unique_names
from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.space import (
    Choice,
    Distribution,
    IntRange,
    SearchSpec,
    Slot,
    parse_search_spec,
)
from optimlab.lab.tune.study import grid_axes


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

"""``lr=find`` in a tune spec: an LR range test places the searched lr range.

``adam:lr=find,betas=(uniform(0.8,0.99),0.999)`` means: run the LR range test
(:func:`optimlab.lab.learning_rates.resolve_lr_find`, Smith's test as ``optimlab lr-find``
runs it) once for this optimizer, then search ``lr`` over ``log(found/10, found·10)`` — two
decades centred on the suggestion. Why a range and not the number: the suggestion (steepest
descent of the smoothed loss) is a point estimate from 100 batches at growing rates, usually
within a decade of the lr a full run prefers; the search then spends the same budget where the
test says the good rates are, instead of over the default six decades.

The test runs on the search seed (its data split, initial weights and batch order) with the
tune's batch size, for the optimizer with the spec's fixed values; hyperparameters that are
searched take the optimizer's defaults during the test. Every spec, the grid sizes and the
scheduler are checked first (lr standing in as ``log(1e-8, 100)``), so a mistake costs no test.

Cost: one range test per spec saying ``lr=find`` — 100 training batches of the tune's batch
size (on digits with batch 64: about 4 epochs of one run), in the driver, before any trial.
``tune.json`` saves the resolved ranges, so ``--resume`` repeats no test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.space import SearchSpec, Slot

SPAN = 10.0  # the searched range: found / SPAN … found · SPAN
_STAND_IN = "log(1e-8,100)"  # covers every range a suggestion in [1e-7, 10] can give


def _items(text: str) -> tuple[str, list[str]]:
    from optimlab.lab.spec import split_top_level

    name, _, rest = text.strip().partition(":")
    return name, [i for i in split_top_level(rest) if i.strip()] if rest.strip() else []


def wants_lr_find(text: str) -> bool:
    """True when the tune spec's ``lr`` is ``find``."""
    return any(k.strip() == "lr" and v.strip() == "find"
               for k, _, v in (i.partition("=") for i in _items(text)[1]))


def with_lr(text: str, value: str) -> str:
    """The tune spec ``text`` with its ``lr=…`` item's value replaced by ``value``."""
    name, items = _items(text)
    new = [f"lr={value}" if i.partition("=")[0].strip() == "lr" else i.strip() for i in items]
    return f"{name}:{','.join(new)}"


def _has_slot(value: Any) -> bool:
    return isinstance(value, Slot) or (isinstance(value, tuple)
                                       and any(_has_slot(v) for v in value))


def range_test_spec(space: SearchSpec) -> str:
    """The plain spec the range test runs: ``lr=find`` and the spec's fixed values only."""
    from optimlab.lab.spec import format_value

    fixed = [f"{k}={format_value(v)}" for k, v in space.template.items()
             if k != "lr" and not _has_slot(v)]
    return f"{space.name}:" + ",".join(["lr=find", *fixed])


def resolve_tune_lr_find(config: TuneConfig, *, device: str,
                         log: Callable[[str], None] | None = None
                         ) -> tuple[TuneConfig, list[dict[str, Any]]]:
    """``config`` with every ``lr=find`` replaced by ``lr=log(found/10, found·10)``, and what
    each range test found (results.json's ``lr_find``: spec as given, the test's spec, the
    suggestion, the searched range, the batches the test ran)."""
    from optimlab.data import load_dataset
    from optimlab.lab.learning_rates import resolve_lr_find
    from optimlab.lab.tune.plan import plan_schedule, plan_tune
    from optimlab.models import build_model

    texts = list(config.optimizer)
    finds = [wants_lr_find(t) for t in texts]
    if not any(finds):
        return config, []
    stand_in = replace(config, optimizer=tuple(with_lr(t, _STAND_IN) if f else t
                                               for t, f in zip(texts, finds, strict=True)))
    planned = plan_tune(stand_in)
    plan_schedule(stand_in)
    data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed,
                        device=device)
    build_model(config.model, data.input_shape, data.num_outputs, seed=config.seed)
    resolved, found_by_spec = [], []
    for text, find, opt in zip(texts, finds, planned, strict=True):
        if not find:
            resolved.append(text)
            continue
        test = range_test_spec(opt.space)
        _, result = resolve_lr_find(test, data, config.model, config.seed, config.batch_size)
        found = float(f"{result.suggestion:.3g}")
        searched = f"log({found / SPAN:.3g},{found * SPAN:.3g})"
        resolved.append(with_lr(text, searched))
        found_by_spec.append({"spec": text, "range_test_spec": test, "suggestion": found,
                              "searched": f"lr={searched}", "batches": len(result.lrs)})
        if log is not None:
            log(f"lr=find: {text} → lr={searched} (range test of {test}: "
                f"{len(result.lrs)} batches, suggestion {found:.3g})")
    return replace(config, optimizer=tuple(resolved)), found_by_spec

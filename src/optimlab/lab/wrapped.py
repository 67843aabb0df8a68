"""Wrapper specs: ``sam(sgd):rho=0.05,lr=0.1`` and ``lookahead(adam):k=5,alpha=0.5``.

The grammar's part that puts one optimizer inside another (:mod:`optimlab.lab.spec` calls
these): the name ``wrapper(inner)`` checked, the flat keywords split by the wrapper's own
signature (:func:`optimlab.optim.wrappers.wrapper_options`) and each half checked against
its owner's, the optimizer built through :func:`optimlab.optim.wrappers.create_wrapped` (or,
for a ``torch.<Name>`` inner, the wrapper class given torch's class).
"""

from __future__ import annotations

from typing import Any

from optimlab.engine.arguments import check_arguments, shown
from optimlab.errors import UserError
from optimlab.lab.spec import (
    WRAPPED,
    Spec,
    check_optimizer_name,
    hyperparameter_names,
    optimizer_class,
)

#: inner optimizers a wrapper spec refuses, and why
NOT_WRAPPABLE = {
    "muon": "the lab's muon splits a model's parameters itself; wrap adamw or sgd instead",
    "muon_adamw": "it splits a model's parameters itself; wrap adamw or sgd instead",
    "adamw_schedulefree": "its train()/eval() weight swap does not pass through a wrapper",
    "sgd_schedulefree": "its train()/eval() weight swap does not pass through a wrapper",
}


def wrapper_name(name: str, text: str) -> str:
    """``sam( sgd )`` → ``sam(sgd)``; UserError for anything else with brackets."""
    from optimlab.optim.wrappers import WRAPPERS

    match = WRAPPED.match(name)
    if match is None:
        nested = name.count("(") > 1
        raise UserError(
            f"bad wrapper spec {shown(text, 60)}: "
            + ("wrappers do not nest; " if nested else "")
            + f"expected wrapper(inner):key=value, e.g. sam(sgd):rho=0.05,lr=0.1 "
            f"(wrappers: {', '.join(sorted(WRAPPERS))})")
    return f"{match.group(1)}({match.group(2)})"


def check_wrapper_names(spec: Spec) -> None:
    """UserError for an unknown wrapper, a nested or unwrappable inner, an unknown inner."""
    from optimlab import optim
    from optimlab.optim.wrappers import WRAPPERS

    inner = spec.inner
    assert spec.wrapper is not None and inner is not None
    if spec.wrapper not in WRAPPERS:
        raise UserError(f"unknown wrapper {shown(spec.wrapper)} in {shown(spec.name, 60)}; "
                        f"valid: {', '.join(sorted(WRAPPERS))}")
    name = inner.name.lower()
    if name in WRAPPERS:
        raise UserError(f"wrappers do not nest: {shown(spec.name, 60)}; the inner optimizer "
                        "is a plain one, e.g. sam(sgd) or lookahead(adam)")
    if name in NOT_WRAPPABLE:
        raise UserError(f"{spec.name} is not supported: {NOT_WRAPPABLE[name]}")
    try:
        check_optimizer_name(inner)
    except UserError:
        inners = [n for n in optim.available() if n not in WRAPPERS and n not in NOT_WRAPPABLE]
        raise UserError(f"unknown optimizer {shown(inner.name)} inside {spec.wrapper}(…); "
                        f"valid: {', '.join(inners)}, or torch.<Name>") from None


def split_wrapper_hparams(spec: Spec) -> tuple[dict[str, Any], dict[str, Any]]:
    """A wrapper spec's keywords: the wrapper's own options, and the inner optimizer's."""
    from optimlab.optim.wrappers import wrapper_options

    assert spec.wrapper is not None
    options = wrapper_options(spec.wrapper)
    own = {k: v for k, v in spec.hparams.items() if k in options}
    return own, {k: v for k, v in spec.hparams.items() if k not in options}


def check_wrapper_hyperparameters(spec: Spec) -> None:
    """Every key belongs to the wrapper or to the inner optimizer; each checked by its owner."""
    inner = spec.inner
    assert spec.wrapper is not None and inner is not None
    valid = hyperparameter_names(spec)
    if valid is not None:
        for key in spec.hparams:
            if key not in valid:
                raise UserError(f"unknown hyperparameter {shown(key)} for {shown(spec.name)}; "
                                f"valid: {', '.join(valid)}")
    own, rest = split_wrapper_hparams(spec)
    check_arguments(optimizer_class(spec), own, what=f"wrapper {shown(spec.wrapper)}")
    inner_cls = optimizer_class(inner)
    if inner_cls is not None:
        check_arguments(inner_cls, rest,
                        what=f"optimizer {shown(inner.name)} inside {spec.wrapper}(…)")


def build_wrapped(spec: Spec, params: Any) -> Any:
    """Our inner optimizers through :func:`~optimlab.optim.wrappers.create_wrapped`; torch's
    classes straight into the wrapper (both take a class)."""
    from optimlab.optim import SAM, Lookahead, wrappers

    inner = spec.inner
    assert spec.wrapper is not None and inner is not None
    if not inner.is_torch:
        return wrappers.create_wrapped(spec.wrapper, inner.name.lower(), params, **spec.hparams)
    own, rest = split_wrapper_hparams(spec)
    cls = optimizer_class(inner)
    if spec.wrapper == "sam":
        return SAM(params, cls, **own, **rest)
    assert cls is not None
    return Lookahead(cls(params, **rest), **own)



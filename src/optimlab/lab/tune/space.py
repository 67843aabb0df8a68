"""Search spaces: compare's optimizer spec where a value may be a search distribution.

Grammar (a value of ``name:key=value,...``; parsed as literals, never evaluated)::

    log(a, b)       log-uniform on [a, b], 0 < a < b            lr=log(1e-5,1e-1)
    uniform(a, b)   uniform on [a, b], a < b                     momentum=uniform(0.8,0.99)
    int(a, b)       an integer in [a, b], a < b                  (any integer hyperparameter)
    [v1, v2, ...]   one of the listed literals (a grid axis)     momentum=[0,0.9,0.99]
    (x, y, ...)     a tuple whose items may be distributions     betas=(uniform(0.8,0.99),0.999)

Anything else is a fixed value, read exactly as compare reads it. A spec without any
distribution searches its default space (:func:`default_space`): ``lr`` over
:func:`default_lr_range`, plus SAM's ``rho`` and Muon's ``adamw_lr``; Prodigy searches
``d_coef`` with ``lr`` fixed at 1. A wrapper spec (``sam(sgd)``, ``lookahead(adam)``) searches
its inner optimizer's lr range. Each distribution becomes one Optuna parameter named after its
place: ``lr``, ``betas[0]``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

from optimlab.errors import UserError
from optimlab.lab.spec import Spec, check_optimizer_spec, format_value, parse_value

#: log-uniform lr ranges (low, high) by optimizer name; looked up by exact name, then by family.
DEFAULT_LR_RANGES: dict[str, tuple[float, float]] = {
    "sgd": (1e-4, 1.0),
    "adagrad": (1e-4, 1.0),
    "rmsprop": (1e-5, 1e-1),
    "adam": (1e-5, 1e-1),
    "adamw": (1e-5, 1e-1),
    "nadam": (1e-4, 1e-1),
    "radam": (1e-4, 1e-1),
    "adamax": (1e-4, 1e-1),
    "adadelta": (1e-2, 1e1),
    "lion": (1e-5, 1e-2),
    "adamw_schedulefree": (1e-4, 1e-1),
    "sgd_schedulefree": (1e-3, 1e1),
    "muon": (1e-3, 1e-1),
    "muon_adamw": (1e-3, 1e-1),
    "sam": (1e-4, 1.0),
    "prodigy": (1e-1, 1e1),
}
#: hyperparameters fixed, instead of searched, when a spec leaves them out: Prodigy estimates
#: its own step size, so lr stays 1 and ``d_coef`` (a factor on the estimate) is searched
DEFAULT_FIXED: dict[str, dict[str, Any]] = {"prodigy": {"lr": 1.0}}
#: families for names not listed above (a substring of the name → the family's range)
_FAMILIES = (("prodigy", "prodigy"), ("dadapt", "prodigy"), ("lion", "lion"),
             ("adam", "adam"), ("sgd", "sgd"), ("muon", "muon"), ("sam", "sam"))
#: the range for any other optimizer: six decades around the usual learning rates
FALLBACK_LR_RANGE = (1e-5, 1.0)


def default_lr_range(name: str) -> tuple[float, float]:
    """The log-uniform lr range searched when a spec gives no distribution."""
    key = name.lower().removeprefix("torch.")
    if key in DEFAULT_LR_RANGES:
        return DEFAULT_LR_RANGES[key]
    for part, family in _FAMILIES:
        if part in key:
            return DEFAULT_LR_RANGES[family]
    return FALLBACK_LR_RANGE


@dataclass(frozen=True)
class LogUniform:
    """log-uniform on [low, high]."""

    low: float
    high: float

    def describe(self) -> str:
        return f"log({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Uniform:
    """uniform on [low, high]."""

    low: float
    high: float

    def describe(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class IntRange:
    """an integer in [low, high]."""

    low: int
    high: int

    def describe(self) -> str:
        return f"int({self.low}, {self.high})"


@dataclass(frozen=True)
class Choice:
    """one of ``values`` (literals, in the order written)."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "[" + ", ".join(format_value(v) for v in self.values) + "]"


Distribution = LogUniform | Uniform | IntRange | Choice

#: what a spec without distributions searches besides its lr (ours only, not torch.<Name>)
DEFAULT_EXTRA_SPACES: dict[str, dict[str, Distribution]] = {
    "sam": {"rho": LogUniform(0.01, 0.5)},  # the SAM paper's grid: 0.01 … 0.5
    "muon": {"adamw_lr": LogUniform(1e-4, 1e-2)},
    "muon_adamw": {"adamw_lr": LogUniform(1e-4, 1e-2)},
    "prodigy": {"d_coef": LogUniform(0.5, 2.0)},
}


def default_space(spec: Spec) -> tuple[dict[str, Distribution], dict[str, Any]]:
    """What a spec without distributions searches, and the values it fixes.

    ``lr`` over :func:`default_lr_range` (a wrapper's inner optimizer's range) unless fixed,
    plus :data:`DEFAULT_EXTRA_SPACES` of the name (a wrapper's too: SAM's ``rho``);
    :data:`DEFAULT_FIXED` of the name is fixed instead.
    """
    names = [] if spec.is_torch else [spec.wrapper or spec.name.lower()]
    lr_name = spec.name
    if spec.inner is not None:
        lr_name = spec.inner.name
        if not spec.inner.is_torch:
            names.append(spec.inner.name.lower())
    fixed: dict[str, Any] = {}
    searched: dict[str, Distribution] = {}
    for name in names:
        fixed.update(DEFAULT_FIXED.get(name, {}))
    if "lr" not in fixed:
        searched["lr"] = LogUniform(*default_lr_range(lr_name))
    for name in names:
        searched.update(DEFAULT_EXTRA_SPACES.get(name, {}))
    return searched, fixed


@dataclass(frozen=True)
class Slot:
    """Where a sampled value goes in the hyperparameters: the parameter's name."""

    param: str


@dataclass(frozen=True)
class SearchSpec:
    """An optimizer spec with distributions: fixed values, slots and the distributions."""

    name: str  # the optimizer name as written (``sgd``, ``torch.Adam``)
    text: str  # the spec as given ("" for a default-lr spec built from a plain name)
    template: dict[str, Any]  # hyperparameter → fixed value, Slot, or tuple holding Slots
    params: dict[str, Distribution]  # parameter name → distribution, in the order written
    default_lr: bool = False  # True when lr was not given and its default range is searched

    @property
    def label(self) -> str:
        """``adam(lr=log(1e-05, 0.1))``; a searched default lr is left out: ``sgd(momentum=0.9)``.
        """
        items = ", ".join(f"{k}={_describe(v, self.params)}" for k, v in self.template.items()
                          if not (self.default_lr and k == "lr"))
        if items and Spec(self.name).wrapper is not None:  # sam(sgd, rho=log(0.01, 0.5))
            return f"{self.name[:-1]}, {items})"
        return f"{self.name}({items})" if items else self.name

    def space(self) -> dict[str, str]:
        """Parameter name → its distribution as written (results.json's ``space``)."""
        return {k: d.describe() for k, d in self.params.items()}

    def resolve(self, values: dict[str, Any]) -> Spec:
        """The plain spec with every slot replaced by ``values[param]``."""
        hparams = {k: _fill(v, values) for k, v in self.template.items()}
        items = ",".join(f"{k}={format_value(v)}" for k, v in hparams.items())
        return Spec(name=self.name, hparams=hparams, text=f"{self.name}:{items}")


def _describe(value: Any, params: dict[str, Distribution]) -> str:
    if isinstance(value, Slot):
        return params[value.param].describe()
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v, params) for v in value) + ")"
    return format_value(value)


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, Slot):
        return values[value.param]
    if isinstance(value, tuple):
        return tuple(_fill(v, values) for v in value)
    return value


_DISTRIBUTIONS = ("log", "uniform", "int")
_GRAMMAR = "log(a,b), uniform(a,b), int(a,b) or [v1,v2,...]"


def _literal(node: ast.expr, where: str) -> Any:
    """A literal AST node's value; ``true``/``false`` and bare words as compare reads them."""
    if isinstance(node, ast.Name):
        return parse_value(node.id, key=where, spec=where)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        raise UserError(f"invalid value {ast.unparse(node)!r} in {where!r}: expected a "
                        f"literal or a distribution ({_GRAMMAR})") from None


def _number(node: ast.expr, where: str, integer: bool = False) -> float | int:
    value = _literal(node, where)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise UserError(f"{where}: bound {ast.unparse(node)!r} must be {kind}")
    return value


def _distribution(call: ast.Call, where: str) -> Distribution:
    """``log(a,b)``, ``uniform(a,b)`` or ``int(a,b)`` with checked bounds."""
    fname = call.func.id if isinstance(call.func, ast.Name) else ast.unparse(call.func)
    if fname not in _DISTRIBUTIONS:
        raise UserError(f"unknown distribution {fname!r} in {where!r}; valid: {_GRAMMAR}")
    text = ast.unparse(call)
    if call.keywords or len(call.args) != 2:
        raise UserError(f"{text!r} in {where!r}: {fname} takes two bounds, {fname}(low, high)")
    low, high = (_number(a, where, integer=fname == "int") for a in call.args)
    if fname == "log" and not 0 < low < high:
        raise UserError(f"{text!r} in {where!r}: log(a,b) needs 0 < a < b, "
                        "e.g. log(1e-5,1e-1)")
    if not low < high:
        raise UserError(f"{text!r} in {where!r}: the low bound must be below the high bound")
    if fname == "log":
        return LogUniform(float(low), float(high))
    if fname == "uniform":
        return Uniform(float(low), float(high))
    return IntRange(int(low), int(high))


def _parse_node(node: ast.expr, param: str, where: str, params: dict[str, Distribution]
                ) -> Any:
    """A value node: a fixed literal, or a Slot (registering its distribution in params)."""
    if isinstance(node, ast.Call):
        params[param] = _distribution(node, where)
        return Slot(param)
    if isinstance(node, ast.List):
        values = tuple(_literal(e, where) for e in node.elts)
        if not values:
            raise UserError(f"empty choice [] for {param!r} in {where!r}; "
                            "list at least one value, e.g. [0, 0.9]")
        if len({format_value(v) for v in values}) != len(values):
            raise UserError(f"a value is listed twice in {ast.unparse(node)!r} in {where!r}")
        params[param] = Choice(values)
        return Slot(param)
    if isinstance(node, ast.Tuple):
        items = tuple(_parse_node(e, f"{param}[{i}]", where, params)
                      for i, e in enumerate(node.elts))
        return items
    return _literal(node, where)


def _parse_value(text: str, key: str, where: str, params: dict[str, Distribution]) -> Any:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return parse_value(text, key=key, spec=where)  # compare's own message
    return _parse_node(tree.body, key, where, params)


def parse_search_spec(text: str) -> SearchSpec:
    """Parse and check one tune spec; UserError for every mistake (nothing is evaluated)."""
    from optimlab.lab.spec import parse_spec, split_top_level

    plain = parse_spec(text.partition(":")[0])  # the name (and its emptiness check)
    template: dict[str, Any] = {}
    params: dict[str, Distribution] = {}
    _, sep, rest = text.strip().partition(":")
    if sep and rest.strip():
        for item in split_top_level(rest):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier():
                raise UserError(f"bad item {item.strip()!r} in optimizer spec {text!r}; "
                                "expected key=value")
            if key in template:
                raise UserError(f"{key!r} given twice in optimizer spec {text!r}")
            template[key] = _parse_value(value, key, text, params)
    default_lr = False
    if not params:
        template, default_lr = _default_template(plain, template, params, text)
    spec = SearchSpec(plain.name, text.strip(), template, params, default_lr)
    check_search_spec(spec)
    return spec


def _default_template(plain: Spec, template: dict[str, Any], params: dict[str, Distribution],
                      text: str) -> tuple[dict[str, Any], bool]:
    """Fill ``params`` with the :func:`default_space` entries the spec leaves out; the new
    template and whether lr is one of them. UserError when nothing is left to search."""
    searched, fixed = default_space(plain)
    accepts_lr = _accepts_lr(plain)
    if not accepts_lr:
        searched.pop("lr", None)
    searched = {k: d for k, d in searched.items() if k not in template}
    if not searched:
        if "lr" in template or accepts_lr:
            raise UserError(f"nothing to search in {text!r}: give a distribution (e.g. "
                            f"lr=log(1e-5,1e-1)) or leave lr out to search its default range")
        raise UserError(f"nothing to search in {text!r}: {plain.name} has no lr; give a "
                        "distribution for one of its hyperparameters, e.g. "
                        "name:alpha=uniform(0.3,0.8)")
    params.update(searched)
    filled = {**{k: Slot(k) for k in searched}, **template}
    filled.update({k: v for k, v in fixed.items() if k not in template})
    return filled, "lr" in searched


def _accepts_lr(spec: Spec) -> bool:
    """Whether the optimizer (a wrapper's inner one) takes ``lr`` (True when only a factory
    knows)."""
    from optimlab.lab.spec import check_optimizer_name, hyperparameter_names

    check_optimizer_name(spec)
    names = hyperparameter_names(spec)
    return names is None or "lr" in names


def corner_values(spec: SearchSpec) -> list[dict[str, Any]]:
    """Points that exercise every bound and every choice (what validation builds)."""
    low = {k: _ends(d)[0] for k, d in spec.params.items()}
    points = [low, {k: _ends(d)[1] for k, d in spec.params.items()}]
    for k, d in spec.params.items():
        if isinstance(d, Choice):
            points += [{**low, k: v} for v in d.values[1:]]
    return points


def _ends(d: Distribution) -> tuple[Any, Any]:
    return (d.values[0], d.values[-1]) if isinstance(d, Choice) else (d.low, d.high)


def check_search_spec(spec: SearchSpec) -> None:
    """Build the optimizer at the corners of the space: unknown names and bad values fail."""
    for values in corner_values(spec):
        try:
            check_optimizer_spec(spec.resolve(values))
        except UserError as e:
            raise UserError(f"{spec.text or spec.name!r}: {e}") from None

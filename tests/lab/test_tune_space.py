"""The tune spec grammar, default lr ranges, grids and the defaults a tune covers (no training)."""

from __future__ import annotations

import math

import pytest

from optimlab import optim
from optimlab.errors import UserError
from optimlab.lab.config import DEFAULT_SUITE
from optimlab.lab.tune.config import DEFAULT_TUNE_SUITE, TuneConfig
from optimlab.lab.tune.plan import covered_defaults, plan_tune
from optimlab.lab.tune.space import (
    FALLBACK_LR_RANGE,
    Choice,
    IntRange,
    LogUniform,
    Uniform,
    default_lr_range,
    parse_search_spec,
)
from optimlab.lab.tune.study import decode, grid_axes, plan_points
from optimlab.optim.wrappers import WRAPPERS

GOOD = [
    ("sgd:lr=log(1e-4,1),momentum=[0,0.9,0.99]",
     {"lr": LogUniform(1e-4, 1.0), "momentum": Choice((0, 0.9, 0.99))}),
    ("adam:lr=log(1e-5,1e-1),betas=(uniform(0.8,0.99),0.999)",
     {"lr": LogUniform(1e-5, 0.1), "betas[0]": Uniform(0.8, 0.99)}),
    ("sgd:lr=uniform(0.01, 0.5), nesterov=[true,false], momentum=0.9",
     {"lr": Uniform(0.01, 0.5), "nesterov": Choice((True, False))}),
    ("adam:lr=[1e-3],betas=[(0.9,0.999),(0.95,0.99)]",
     {"lr": Choice((1e-3,)), "betas": Choice(((0.9, 0.999), (0.95, 0.99)))}),
    ("adam", {"lr": LogUniform(*default_lr_range("adam"))}),
    ("sgd:momentum=0.9", {"lr": LogUniform(*default_lr_range("sgd"))}),
    ("torch.Adam:weight_decay=log(1e-6,1e-2)", {"weight_decay": LogUniform(1e-6, 1e-2)}),
]


@pytest.mark.parametrize("text,params", GOOD, ids=[g[0] for g in GOOD])
def test_good_specs_parse_to_their_distributions(text, params):
    spec = parse_search_spec(text)
    assert spec.params == params


def test_fixed_values_stay_fixed_and_slots_are_filled():
    spec = parse_search_spec("adam:lr=log(1e-5,1e-1),betas=(uniform(0.8,0.99),0.999),"
                             "amsgrad=true")
    plain = spec.resolve({"lr": 0.01, "betas[0]": 0.9})
    assert plain.hparams == {"lr": 0.01, "betas": (0.9, 0.999), "amsgrad": True}
    assert plain.name == "adam"
    assert spec.label == "adam(lr=log(1e-05, 0.1), betas=(uniform(0.8, 0.99), 0.999), amsgrad=true)"


def test_default_lr_spec_keeps_its_fixed_values_and_names_without_lr():
    spec = parse_search_spec("sgd:momentum=0.99,nesterov=true")
    assert spec.default_lr and spec.label == "sgd(momentum=0.99, nesterov=true)"
    assert spec.resolve({"lr": 0.1}).hparams == {"lr": 0.1, "momentum": 0.99, "nesterov": True}


def test_int_range_on_an_integer_hyperparameter():
    spec = parse_search_spec("torch.LBFGS:lr=log(0.1,1),max_iter=int(5,20)")
    assert spec.params["max_iter"] == IntRange(5, 20)


BAD = [
    ("sgd:lr=log(0,1)", "0 < a < b"),
    ("sgd:lr=log(1,0.1)", "0 < a < b"),
    ("sgd:lr=uniform(0.5,0.1)", "low bound must be below"),
    ("sgd:momentum=[]", "empty choice"),
    ("sgd:lr=uniform(1)", "two bounds"),
    ("sgd:lr=log(1e-3,1,2)", "two bounds"),
    ("sgd:lr=log(a=1,b=2)", "two bounds"),
    ("sgd:lr=exp(1,2)", "unknown distribution 'exp'"),
    ("sgd:lr=__import__('os').system('true')", "unknown distribution"),
    ("sgd:lr=log('a',1)", "must be a finite number"),
    ("sgd:lr=log(1e-3,inf)", "finite number"),
    ("sgd:lr=log(1e-3,1),foo=uniform(0,1)", "unknown argument 'foo'"),
    ("adam:lr=log(1e-5,1e-1),bogus=[1,2]", "'bogus'"),
    ("sgd:momentum=uniform(-1,0.5)", "momentum"),
    ("sgd:lr=log(1e-3,1),lr=0.1", "given twice"),
    ("sgd:momentum=[0,0]", "listed twice"),
    ("sgd:lr=0.1", "nothing to search"),
    ("nosuch", "unknown optimizer"),
    ("sgd:lr=[log(1e-3,1)]", "expected a literal"),
    ("sgd:lr=int(0.5,2)", "must be an integer"),
]


@pytest.mark.parametrize("text,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_specs_are_user_errors(text, fragment):
    with pytest.raises(UserError) as e:
        parse_search_spec(text)
    assert fragment in str(e.value), str(e.value)


def test_every_registered_optimizer_has_a_valid_default_range():
    with_lr = 0
    for name in optim.available():
        low, high = default_lr_range(name)
        assert 0 < low < high
        if name in WRAPPERS:  # a wrapper alone is refused: sam(sgd) is the spec
            with pytest.raises(UserError, match="wraps another optimizer"):
                parse_search_spec(name)
            continue
        spec = parse_search_spec(name)  # builds the optimizer at the corners of the space
        if name == "prodigy":  # its own step size: d_coef searched, lr fixed at 1
            assert "lr" not in spec.params and spec.template["lr"] == 1.0
            continue
        assert spec.params["lr"] == LogUniform(low, high)
        with_lr += 1
    assert with_lr >= 6


#: issue 11's default spaces: spec → every searched parameter's distribution and fixed values
DEFAULT_SPACES = [
    ("nadam", {"lr": "log(0.0001, 0.1)"}, {}),
    ("radam", {"lr": "log(0.0001, 0.1)"}, {}),
    ("adamax", {"lr": "log(0.0001, 0.1)"}, {}),
    ("lion", {"lr": "log(1e-05, 0.01)"}, {}),
    ("adamw_schedulefree", {"lr": "log(0.0001, 0.1)"}, {}),
    ("sgd_schedulefree", {"lr": "log(0.001, 10)"}, {}),
    ("prodigy", {"d_coef": "log(0.5, 2)"}, {"lr": 1.0}),
    ("muon", {"lr": "log(0.001, 0.1)", "adamw_lr": "log(0.0001, 0.01)"}, {}),
    ("sam(sgd)", {"lr": "log(0.0001, 1)", "rho": "log(0.01, 0.5)"}, {}),
    ("sam(adam):rho=0.1", {"lr": "log(1e-05, 0.1)"}, {"rho": 0.1}),
    ("lookahead(adam):k=5", {"lr": "log(1e-05, 0.1)"}, {"k": 5}),
    ("lookahead(torch.SGD)", {"lr": "log(0.0001, 1)"}, {}),
    ("lookahead(radam):lr=0.01,alpha=uniform(0.3,0.8)", {"alpha": "uniform(0.3, 0.8)"},
     {"lr": 0.01}),
]


@pytest.mark.parametrize(("text", "space", "fixed"), DEFAULT_SPACES)
def test_default_space_of_each_new_name(text, space, fixed):
    spec = parse_search_spec(text)
    assert spec.space() == space
    assert {k: v for k, v in spec.template.items() if k not in space} == fixed
    built = spec.resolve({k: d.low for k, d in spec.params.items()})
    assert built.hparams == {**fixed, **{k: d.low for k, d in spec.params.items()}}


def test_default_ranges_by_family_and_fallback():
    assert default_lr_range("torch.Adam") == default_lr_range("adam")
    assert default_lr_range("adamw_new_variant") == default_lr_range("adam")
    assert default_lr_range("sgd_new_variant") == default_lr_range("sgd")
    assert default_lr_range("something-new") == FALLBACK_LR_RANGE


def test_grid_fills_exactly_the_trials_or_says_what_would():
    spec = parse_search_spec("sgd:lr=log(1e-4,1),momentum=[0,0.9]")
    axes = grid_axes(spec, 8)
    assert axes["momentum"] == [0, 0.9]
    assert axes["lr"] == [1e-4, pytest.approx(2.154e-3), pytest.approx(0.04642), 1.0]
    with pytest.raises(UserError, match=r"has 8 points \(4 lr × 2 momentum\) but --trials is 9"):
        grid_axes(spec, 9)
    with pytest.raises(UserError, match="has 4 points"):
        grid_axes(parse_search_spec("sgd:momentum=[0,0.5,0.9,0.99]"), 3)  # grid > trials
    lr = grid_axes(parse_search_spec("adam"), 5)["lr"]  # default lr: a 5-point log grid
    assert len(lr) == 5 and lr[0] == 1e-5 and lr[-1] == 0.1
    assert all(math.isclose(lr[i + 1] / lr[i], 10.0, rel_tol=1e-3) for i in range(4))


def test_planned_points_are_seeded_and_inside_the_space():
    spec = parse_search_spec("adam:lr=log(1e-5,1e-1),betas=([(0.9,0.999),(0.5,0.6)])")
    for sampler in ("random", "qmc", "grid"):
        trials = 4 if sampler == "grid" else 6
        a = plan_points(spec, sampler, trials, seed=3)
        assert a == plan_points(spec, sampler, trials, seed=3)
        assert a != plan_points(spec, sampler, trials, seed=4) or sampler == "grid"
        for point in a:
            values = decode(spec, point)
            assert 1e-5 <= values["lr"] <= 0.1
            assert values["betas"] in ((0.9, 0.999), (0.5, 0.6))
    grid = plan_points(spec, "grid", 4, seed=0)
    assert len({tuple(sorted(p.items())) for p in grid}) == 4  # every grid point once


def test_default_suite_covers_each_default_compare_spec_once():
    planned = plan_tune(TuneConfig())
    assert [p.space.text for p in planned] == list(DEFAULT_TUNE_SUITE)
    assert [[d.text for d in p.defaults] for p in planned] == [[s] for s in DEFAULT_SUITE]


def test_covered_defaults_need_the_same_keys_and_a_point_inside():
    assert [d.text for d in covered_defaults(parse_search_spec(
        "sgd:lr=log(1e-4,1),momentum=[0.9,0.99]"))] == ["sgd:lr=1e-3,momentum=0.9",
                                                         "sgd:lr=1e-3,momentum=0.99"]
    assert covered_defaults(parse_search_spec("adam:lr=log(1e-2,1e-1)")) == ()  # 1e-3 outside
    assert covered_defaults(parse_search_spec("adam:lr=log(1e-5,1e-1),amsgrad=true")) == ()


def test_toml_and_flags_fill_the_same_fields(tmp_path):
    from optimlab.lab.tune import load_tune_config

    path = tmp_path / "tune.toml"
    path.write_text('optimizer = ["adam", "sgd:lr=log(1e-3,1)"]\ntrials = 4\n'
                    'sampler = "grid"\ntarget = "val_accuracy=0.9"\n')
    cfg = load_tune_config(path, {"trials": 6, "ray-address": None})
    assert cfg.optimizer == ("adam", "sgd:lr=log(1e-3,1)") and cfg.trials == 6
    assert cfg.sampler == "grid" and cfg.target_pair() == ("val_accuracy", 0.9)
    for bad, fragment in (('trial = 3', "unknown key 'trial'"), ("trials = 0", ">= 1"),
                          ('sampler = "cmaes"', "one of tpe, random, grid, qmc"),
                          ("defaults = 1", "true or false"),
                          ('target = "val_loss"', "METRIC=VALUE")):
        path.write_text(bad + "\n")
        with pytest.raises(UserError, match=None) as e:
            load_tune_config(path)
        assert fragment in str(e.value) and str(path) in str(e.value)

"""state and state_dict: torch's keys and format, loadable in both directions.

A state_dict saved by torch.optim.X after some steps loads into optimlab.optim.X (and the
other way round), and training then continues bit-identically to the saver continuing itself.
"""

from __future__ import annotations

import copy

import pytest
import torch
from optim_cases import (
    BY_NAME,
    NO_GRAD,
    TORCH_ALGOS,
    diff_states,
    make_groups,
    make_params,
    step_both,
)

# One configuration per algorithm that creates every optional state tensor.
FULL_STATE = {
    "sgd": {"momentum": 0.9, "weight_decay": 0.1},
    "adagrad": {"lr_decay": 0.1, "initial_accumulator_value": 0.2},
    "rmsprop": {"momentum": 0.5, "centered": True},
    "adam": {"amsgrad": True, "lr": torch.tensor(0.01)},
    "adamw": {"amsgrad": True},
    "adadelta": {"weight_decay": 0.1},
    "radam": {"weight_decay": 0.1},
    "adamax": {"weight_decay": 0.1, "maximize": True},
    "nadam": {"weight_decay": 0.1, "decoupled_weight_decay": True},
}
# torch's NAdam.load_state_dict casts its float32 ``mu_product`` to a float64 parameter's
# dtype, so torch itself does not resume a float64 NAdam exactly (test_torch_family_new.py):
# its crossing runs in float32, where nothing is cast.
CROSSING_DTYPE = {"nadam": torch.float32}


def _build(cls, kwargs, dtype=torch.float64):
    params = make_params(dtype)
    extra = {"foreach": False} if cls.__module__.startswith("torch") else {}
    return cls(make_groups(params, kwargs, cls), **kwargs, **extra), params


@pytest.mark.parametrize("direction", ["torch->optimlab", "optimlab->torch"])
@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_state_dict_loads_and_training_continues_identically(algo, direction):
    kwargs = FULL_STATE[algo.name]
    src_cls, dst_cls = (algo.theirs, algo.ours)
    if direction == "optimlab->torch":
        src_cls, dst_cls = dst_cls, src_cls
    dtype = CROSSING_DTYPE.get(algo.name, torch.float64)
    src, src_p = _build(src_cls, kwargs, dtype)
    gen = torch.Generator().manual_seed(5)
    assert step_both([(src, src_p)], 15, gen) is None

    saved = copy.deepcopy(src.state_dict())
    dst, dst_p = _build(dst_cls, kwargs, dtype)
    with torch.no_grad():
        for a, b in zip(dst_p, src_p, strict=True):
            a.copy_(b)
    dst.load_state_dict(saved)
    assert diff_states(dst, src) is None

    # Continue: the loader must follow the saver, step for step, bit for bit.
    assert step_both([(dst, dst_p), (src, src_p)], 15, gen) is None
    assert diff_states(dst, src) is None


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_state_dict_format_matches_torch(algo):
    """Same param_groups entries (ours may add ``fused``) and the same state, key for key."""
    kwargs = FULL_STATE[algo.name]
    ours, ours_p = _build(algo.ours, kwargs)
    theirs, theirs_p = _build(algo.theirs, kwargs)
    assert step_both([(ours, ours_p), (theirs, theirs_p)], 3, torch.Generator()) is None
    assert diff_states(ours, theirs) is None
    for g_ours, g_theirs in zip(
        ours.state_dict()["param_groups"], theirs.state_dict()["param_groups"], strict=True
    ):
        extra = set(g_ours) - set(g_theirs)
        assert extra <= {"fused"}, extra
        assert set(g_theirs) <= set(g_ours)
        for key, value in g_theirs.items():
            if key != "foreach":  # we were built without foreach=False
                assert str(g_ours[key]) == str(value), key


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_no_state_for_params_without_grad(algo):
    ours, params = _build(algo.ours, FULL_STATE[algo.name])
    theirs, theirs_p = _build(algo.theirs, FULL_STATE[algo.name])
    assert step_both([(ours, params), (theirs, theirs_p)], 2, torch.Generator()) is None
    has_state = NO_GRAD in ours.state_dict()["state"]
    # torch's Adagrad creates its state at construction, for every parameter; others lazily.
    assert has_state == (algo.name == "adagrad")
    assert has_state == (NO_GRAD in theirs.state_dict()["state"])


def test_sgd_without_momentum_keeps_no_state():
    opt, params = _build(BY_NAME["sgd"].ours, {})
    assert step_both([(opt, params)], 2, torch.Generator()) is None
    assert opt.state_dict()["state"] == {}


def test_step_counter_is_a_cpu_tensor_like_torch():
    opt, params = _build(BY_NAME["adam"].ours, {})
    assert step_both([(opt, params)], 3, torch.Generator()) is None
    step = opt.state[params[0]]["step"]
    assert isinstance(step, torch.Tensor) and step.dim() == 0 and step.device.type == "cpu"
    assert step.item() == 3.0


def test_loading_torch_rmsprop_state_keeps_our_fused_option():
    """torch's RMSprop groups have no ``fused`` key; loading fills ours from our defaults."""
    algo = BY_NAME["rmsprop"]
    theirs, _ = _build(algo.theirs, {})
    ours, _ = _build(algo.ours, {})
    ours.load_state_dict(theirs.state_dict())
    assert all(g["fused"] is None for g in ours.param_groups)


@pytest.mark.parametrize("algo", [a for a in TORCH_ALGOS if a.name != "sgd"], ids=str)
def test_legacy_float_step_is_converted_like_torch(algo):
    """Old checkpoints stored ``step`` as a number; both sides turn it into the same tensor."""
    src, src_p = _build(algo.theirs, FULL_STATE[algo.name])
    assert step_both([(src, src_p)], 3, torch.Generator()) is None
    saved = src.state_dict()
    for entry in saved["state"].values():
        entry["step"] = float(entry["step"])
    loaded = []
    for cls in (algo.ours, algo.theirs):
        opt, params = _build(cls, FULL_STATE[algo.name])
        opt.load_state_dict(copy.deepcopy(saved))
        loaded.append((opt, params))
    assert diff_states(loaded[0][0], loaded[1][0]) is None
    assert step_both(loaded, 3, torch.Generator()) is None

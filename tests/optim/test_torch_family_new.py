"""NAdam, RAdam and Adamax against torch.optim's for-loop path, bit for bit.

The same harness as the six seed optimizers (``optim_cases.run_parity``): two param groups,
contiguous, transposed, strided and 0-dim parameters, one whose grad is always None and one
with zero gradients, 200 steps in float32 and float64 (40 in complex64), every parameter
compared with ``torch.equal`` after every step and the whole state at the end. The inputs are
torch's own (``optim_inputs_func_<algo>``), plus flag combinations they leave out; errors are
torch's own error inputs, with torch's exception type and message.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from optim_cases import Algo, make_params, run_parity
from torch.testing._internal import common_optimizers as co
from torch.testing._internal.common_optimizers import OptimizerErrorEnum

import optimlab.optim as oo

NEW_ALGOS = (
    Algo("nadam", oo.NAdam, torch.optim.NAdam, co.optim_inputs_func_nadam,
         co.optim_error_inputs_func_nadam),
    Algo("radam", oo.RAdam, torch.optim.RAdam, co.optim_inputs_func_radam,
         co.optim_error_inputs_func_radam),
    Algo("adamax", oo.Adamax, torch.optim.Adamax, co.optim_inputs_func_adamax,
         co.optim_error_inputs_func_adamax),
)
NEW_BY_NAME = {a.name: a for a in NEW_ALGOS}
UNHONOURED = ("capturable", "differentiable")


def _slug(text: str) -> str:
    return "-".join(text.replace(",", " ").split()) or "default"


def _torch_inputs() -> list:
    """Each algorithm's torch sample inputs for any device (device-neutral ones run on CPU);
    those using a flag we refuse run without it, with that said in their id."""
    out = []
    for algo in NEW_ALGOS:
        seen: dict[str, dict] = {}
        for device in ("cpu", "cuda", "mps"):
            for inp in algo.inputs(device):
                kwargs = {k: v for k, v in inp.kwargs.items() if k not in UNHONOURED}
                dropped = sorted(k for k in inp.kwargs if k in UNHONOURED and inp.kwargs[k])
                desc = _slug(inp.desc) + (f"-without-{'+'.join(dropped)}" if dropped else "")
                seen.setdefault(desc, kwargs)
        out += [pytest.param(algo, kw, id=f"{algo.name}-{d}") for d, kw in seen.items()]
    return out


DTYPE_STEPS = [(torch.float32, 200), (torch.float64, 200), (torch.complex64, 40)]


@pytest.mark.parametrize("dtype_steps", DTYPE_STEPS, ids=lambda d: f"{d[0]}x{d[1]}")
@pytest.mark.parametrize(("algo", "kwargs"), _torch_inputs())
def test_torch_inputs_bit_identical(algo, kwargs, dtype_steps):
    dtype, steps = dtype_steps
    assert run_parity(algo, kwargs, dtype, steps) is None


EXTRA = [
    ("nadam", {"maximize": True, "weight_decay": 0.1, "momentum_decay": 0.1}),
    ("nadam", {"lr": torch.tensor(0.01), "decoupled_weight_decay": True, "weight_decay": 0.3}),
    ("nadam", {"betas": (0.5, 0.6), "eps": 1e-3}),
    ("radam", {"maximize": True, "weight_decay": 0.1, "betas": (0.8, 0.9)}),
    ("radam", {"lr": torch.tensor(0.01), "decoupled_weight_decay": True, "weight_decay": 0.3}),
    ("radam", {"betas": (0.9, 0.5)}),  # ρ_t never exceeds 5: the momentum branch throughout
    ("adamax", {"maximize": True, "weight_decay": 0.1, "eps": 1e-3}),
    ("adamax", {"lr": torch.tensor(0.01), "betas": (0.5, 0.6)}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    "case", EXTRA, ids=[n + "-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in EXTRA]
)
def test_flag_combinations_bit_identical(case, dtype):
    name, kwargs = case
    assert run_parity(NEW_BY_NAME[name], kwargs, dtype, 200) is None


@pytest.mark.parametrize("algo", NEW_ALGOS, ids=str)
def test_foreach_runs_the_eager_rule(algo):
    kwargs = {"weight_decay": 0.1, "maximize": True}
    assert run_parity(algo, kwargs, torch.float32, 30, ours_kwargs={"foreach": True}) is None


def _shape(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("algo", NEW_ALGOS, ids=str)
def test_signature_and_defaults_match_torch(algo):
    """torch's names, order, defaults and kinds, plus a trailing keyword-only ``fused``."""
    ours, theirs = _shape(algo.ours), _shape(algo.theirs)
    assert ours[:-1] == theirs
    assert ours[-1] == ("fused", inspect.Parameter.KEYWORD_ONLY, None)
    ours_defaults = algo.ours(make_params(torch.float32)).defaults
    theirs_defaults = algo.theirs(make_params(torch.float32)).defaults
    assert {k: v for k, v in ours_defaults.items() if k != "fused"} == theirs_defaults


def _error_inputs() -> list:
    return [
        pytest.param(algo, e, id=f"{algo.name}-{_slug(e.optimizer_error_input.desc)}")
        for algo in NEW_ALGOS
        for e in algo.error_inputs("cpu", torch.float32)
    ]


def _raised(cls, error_input):
    inp = error_input.optimizer_error_input
    params = inp.params if inp.params is not None else [torch.nn.Parameter(torch.randn(2, 3))]
    if issubclass(error_input.error_type, Warning):
        with pytest.warns(error_input.error_type, match=error_input.error_regex) as record:
            cls(params, **inp.kwargs)
        return record[0].message
    with pytest.raises(error_input.error_type, match=error_input.error_regex) as info:
        opt = cls(params, **inp.kwargs)
        if error_input.error_on == OptimizerErrorEnum.STEP_ERROR:
            opt.step()
    return info.value


@pytest.mark.parametrize(("algo", "error_input"), _error_inputs())
def test_torch_error_inputs_raise_like_torch(algo, error_input):
    assert str(_raised(algo.ours, error_input)) == str(_raised(algo.theirs, error_input))


@pytest.mark.parametrize("algo", NEW_ALGOS, ids=str)
@pytest.mark.parametrize("direction", ["torch-to-ours", "ours-to-torch"])
def test_state_dict_crosses_and_training_continues_identically(algo, direction):
    kwargs = {"weight_decay": 0.1}
    first, second = (algo.theirs, algo.ours) if direction == "torch-to-ours" else (
        algo.ours, algo.theirs)
    p1, p2 = make_params(torch.float32), make_params(torch.float32)
    a = first(p1, **kwargs)
    gen = torch.Generator().manual_seed(5)
    for _ in range(7):
        for p in p1:
            p.grad = torch.randn(p.shape, generator=gen)
        a.step()
    with torch.no_grad():
        for x, y in zip(p2, p1, strict=True):
            x.copy_(y)
    b = second(p2, **kwargs)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for _ in range(20):
        grads = [torch.randn(p.shape, generator=gen) for p in p1]
        for x, y, g in zip(p1, p2, grads, strict=True):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
        assert all(torch.equal(x, y) for x, y in zip(p1, p2, strict=True))

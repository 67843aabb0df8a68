"""Bit-identical trajectories against torch.optim's for-loop path (foreach=False) on CPU.

Every case trains two param groups (the second with its own lr) holding a contiguous, a
transposed, a strided and a 0-dim parameter, one whose grad is always None and one with zero
gradients, for 200 steps, comparing every parameter after every step with ``torch.equal`` and
the whole state (keys, dtypes, strides, values) at the end.
"""

from __future__ import annotations

import pytest
import torch
from optim_cases import BY_NAME, TORCH_ALGOS, make_params, run_parity, torch_input_params

# (dtype, steps): the issue asks for >= 200 steps in float32 and float64; complex parameters
# (viewed as pairs of reals by every rule but SGD's) get a shorter run to keep the suite fast.
DTYPE_STEPS = [(torch.float32, 200), (torch.float64, 200)]
COMPLEX_STEPS = [(torch.complex64, 40)]


def _ds_id(ds):
    return f"{str(ds[0]).removeprefix('torch.')}x{ds[1]}"


@pytest.mark.parametrize("dtype_steps", DTYPE_STEPS + COMPLEX_STEPS, ids=_ds_id)
@pytest.mark.parametrize(("algo", "kwargs"), torch_input_params())
def test_torch_inputs_bit_identical(algo, kwargs, dtype_steps):
    dtype, steps = dtype_steps
    assert run_parity(algo, kwargs, dtype, steps) is None


# Flag combinations torch's sample inputs leave out.
EXTRA = [
    ("sgd", {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "maximize": True}),
    ("sgd", {"lr": torch.tensor(0.01), "momentum": 0.5, "nesterov": True}),
    ("sgd", {"weight_decay": torch.tensor(0.1), "momentum": 0.9}),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.5, "maximize": True}),
    ("adagrad", {"lr": torch.tensor(0.05), "lr_decay": 0.01, "eps": 1e-3}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9, "alpha": 0.9, "eps": 1e-3}),
    ("rmsprop", {"lr": torch.tensor(0.001), "centered": True, "momentum": 0.5}),
    ("adam", {"amsgrad": True, "maximize": True, "betas": (0.8, 0.9)}),
    ("adam", {"lr": torch.tensor(0.01), "amsgrad": True, "weight_decay": 0.1}),
    ("adam", {"betas": (torch.tensor(0.8), torch.tensor(0.95)), "eps": 1e-6}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {"lr": torch.tensor(0.01), "amsgrad": True, "maximize": True}),
    ("adamw", {"weight_decay": 0.5, "betas": (0.5, 0.5)}),
    ("adadelta", {"lr": torch.tensor(0.5), "rho": 0.5, "eps": 1e-3}),
    ("adadelta", {"rho": 1.0, "weight_decay": 0.1}),
]


def _id(case):
    name, kwargs = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("dtype_steps", DTYPE_STEPS + [(torch.complex128, 40)], ids=_ds_id)
@pytest.mark.parametrize("case", EXTRA, ids=[_id(c) for c in EXTRA])
def test_flag_combinations_bit_identical(case, dtype_steps):
    name, kwargs = case
    dtype, steps = dtype_steps
    assert run_parity(BY_NAME[name], kwargs, dtype, steps) is None


@pytest.mark.parametrize("flags", [{"foreach": True}, {"fused": False}], ids=str)
@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_foreach_and_fused_false_run_the_eager_rule(algo, flags):
    """``foreach=True`` is accepted for compatibility and is the same eager computation."""
    kwargs = {"weight_decay": 0.1, "maximize": True}
    assert run_parity(algo, kwargs, torch.float32, steps=30, ours_kwargs=flags) is None


def _sparse_grad(shape, gen, dtype):
    rows = torch.randperm(shape[0], generator=gen)[:2]
    values = torch.randn(2, *shape[1:], dtype=dtype, generator=gen)
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, shape)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("sgd", {}), ("sgd", {"momentum": 0.9}), ("adagrad", {"lr_decay": 0.1})],
    ids=["sgd", "sgd-momentum", "adagrad"],
)
def test_sparse_gradients_bit_identical(name, kwargs):
    """torch's SGD and Adagrad accept sparse gradients; so do ours, with the same result."""
    algo = BY_NAME[name]
    ours_p, theirs_p = make_params(torch.float64)[:1], make_params(torch.float64)[:1]
    ours, theirs = algo.ours(ours_p, **kwargs), algo.theirs(theirs_p, **kwargs, foreach=False)
    gen = torch.Generator().manual_seed(3)
    for _ in range(50):
        g = _sparse_grad(ours_p[0].shape, gen, torch.float64)
        ours_p[0].grad, theirs_p[0].grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
        assert torch.equal(ours_p[0], theirs_p[0])

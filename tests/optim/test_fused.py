"""``fused=True`` (the compiled rule on flat buffers) against torch.optim's for-loop path.

Tolerances are the ones torch itself allows between its fused and for-loop optimizers
(``test_fused_matches_forloop`` in torch's test_optim: ``assertEqual``'s defaults, with
``optim_db``'s overrides — float64 atol=4.5e-7/rtol=2.2e-6 for Adam/AdamW and, for
Adadelta's sqrt chain, the compiled-parity override atol=5e-5/rtol=5.5e-4).
Tensors are tiny and the flag combinations few, so the whole file compiles about fifteen
graphs (seconds each, much less with inductor's persistent cache).
"""

from __future__ import annotations

import copy

import pytest
import torch

import optimlab.optim as ours
from optimlab.optim import _direct, _fused

STEPS = 5

#: (algorithm, hyperparameters): the default and a combination of its main flags
CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "maximize": True}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "maximize": True,
                 "initial_accumulator_value": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("adamw", {"lr": 0.01}),
    ("adadelta", {}),
    ("adadelta", {"lr": 0.5, "weight_decay": 0.1, "maximize": True}),
]
TORCH = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam",
         "adamw": "AdamW", "adadelta": "Adadelta"}


def _tol(algo: str, dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float64:
        return {"atol": 4.5e-7, "rtol": 2.2e-6}
    if algo == "adadelta":
        return {"atol": 5e-5, "rtol": 5.5e-4}
    return {"atol": 1e-5, "rtol": 1.3e-6}


def _case_id(case: tuple[str, dict[str, object]]) -> str:
    algo, hp = case
    return "-".join([algo, *(k for k in hp if k != "lr")]) or algo


def _params(dtype: torch.dtype = torch.float32, seed: int = 0) -> list[torch.Tensor]:
    """Odd shapes: a 2-D, a 1-D, a non-contiguous (transposed), a single element, a spare."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (5,), (3, 4), (1,), (2, 2), (6,)]
    ts = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    ts[2] = ts[2].t()
    return [torch.nn.Parameter(t) for t in ts]


def _groups(params: list[torch.Tensor], lr: float) -> list[dict[str, object]]:
    """Two groups with different lr; the second holds one contiguous parameter."""
    return [{"params": params[:5]}, {"params": params[5:], "lr": lr / 2}]


def _grads(
    params: list[torch.Tensor], step: int, skip: int | None = 4
) -> list[torch.Tensor | None]:
    gen = torch.Generator().manual_seed(1000 + step)
    return [None if i == skip else torch.randn(p.shape, generator=gen, dtype=p.dtype)
            for i, p in enumerate(params)]


def _run(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: range,
         skip: int | None = 4) -> None:
    for step in steps:
        for p, g in zip(params, _grads(params, step, skip), strict=True):
            p.grad = g
        opt.step()


def _pair(algo: str, hp: dict[str, object], dtype: torch.dtype = torch.float32):
    mine, ref = _params(dtype), _params(dtype)
    lr = float(hp.get("lr", 1.0))  # type: ignore[arg-type]
    fused = ours.create(algo, _groups(mine, lr), fused=True, **hp)
    torch_opt = getattr(torch.optim, TORCH[algo])(_groups(ref, lr), foreach=False, **hp)
    return fused, mine, torch_opt, ref


def _load_as_forloop(opt: torch.optim.Optimizer, state_dict: dict) -> None:
    """Load a (fused) state_dict, keeping ``opt`` on its for-loop path.

    The saved groups say ``fused=True``; torch's own fused CPU kernels get transposed
    parameters wrong (torch 2.14.1: fused Adam on a ``.t()`` parameter with a contiguous grad
    differs from its for-loop by ~5e-2 after 3 steps), so the reference stays the for-loop.
    """
    opt.load_state_dict(copy.deepcopy(state_dict))
    for group in opt.param_groups:
        group["fused"], group["foreach"] = None, False


def _assert_close(a: list[torch.Tensor], b: list[torch.Tensor], algo: str) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.detach(), y.detach(), **_tol(algo, x.dtype))


def _assert_states_close(mine, ref, params_m, params_r, algo) -> None:
    for pm, pr in zip(params_m, params_r, strict=True):
        sm, sr = mine.state.get(pm, {}), ref.state.get(pr, {})
        assert sorted(sm) == sorted(sr)
        for key in sr:
            if isinstance(sr[key], torch.Tensor):
                torch.testing.assert_close(sm[key].float(), sr[key].float(), **_tol(algo, pm.dtype))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fused_matches_torch_forloop(case):
    algo, hp = case
    fused, mine, torch_opt, ref = _pair(algo, hp)
    _run(fused, mine, range(STEPS))
    _run(torch_opt, ref, range(STEPS))
    _assert_close(mine, ref, algo)
    _assert_states_close(fused, torch_opt, mine, ref, algo)
    # grad None: no state created (Adagrad, like torch, creates it in its constructor)
    assert bool(fused.state.get(mine[4])) == bool(torch_opt.state.get(ref[4]))
    assert fused.__dict__.get("_optimlab_fused_plans"), "the fused path did not run"


def test_state_is_views_into_one_flat_buffer_per_key():
    fused, mine, _, _ = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(2))
    bases = {fused.state[p]["exp_avg"].untyped_storage().data_ptr() for p in mine[:4]}
    assert len(bases) == 1  # the four params of group 0 share one exp_avg buffer


def test_lr_change_does_not_recompile():
    fused, mine, torch_opt, ref = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(1))
    _run(torch_opt, ref, range(1))
    compiled = _fused.compile_count()
    for step in range(1, 4):
        for opt in (fused, torch_opt):
            for group in opt.param_groups:
                group["lr"] *= 0.5
        _run(fused, mine, range(step, step + 1))
        _run(torch_opt, ref, range(step, step + 1))
    assert _fused.compile_count() == compiled
    _assert_close(mine, ref, "adam")


def test_float64_and_float32_groups():
    p32, p64 = _params(torch.float32), _params(torch.float64, seed=1)
    r32, r64 = _params(torch.float32), _params(torch.float64, seed=1)
    fused = ours.Adam([{"params": p32}, {"params": p64, "lr": 0.02}], lr=0.01, fused=True)
    ref = torch.optim.Adam([{"params": r32}, {"params": r64, "lr": 0.02}], lr=0.01, foreach=False)
    for opt, ps in ((fused, p32 + p64), (ref, r32 + r64)):
        _run(opt, ps, range(STEPS), skip=None)
    _assert_close(p32 + p64, r32 + r64, "adam")


def test_params_with_different_step_counts():
    fused, mine, torch_opt, ref = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(2), skip=0)  # param 0 starts two steps late
    _run(torch_opt, ref, range(2), skip=0)
    _run(fused, mine, range(2, 5), skip=None)
    _run(torch_opt, ref, range(2, 5), skip=None)
    assert float(fused.state[mine[0]]["step"]) == 3.0
    assert float(fused.state[mine[1]]["step"]) == 5.0
    _assert_close(mine, ref, "adam")
    _assert_states_close(fused, torch_opt, mine, ref, "adam")


@pytest.mark.parametrize("direct_min", [1 << 12, 4], ids=["packed", "in-place"])
@pytest.mark.parametrize("algo", ["adam", "sgd"])
def test_state_dict_crosses_to_torch_and_eager_and_back(algo, direct_min, monkeypatch):
    """Packed (views into flat buffers) or updated in place (the direct kernel), the fused
    state_dict is torch's, in both directions."""
    monkeypatch.setattr(_fused, "DIRECT_MIN_NUMEL", direct_min)
    hp = {"lr": 0.01, "momentum": 0.9} if algo == "sgd" else {"lr": 0.01, "amsgrad": True}
    fused, mine, torch_opt, ref = _pair(algo, hp)
    _run(fused, mine, range(3))
    _run(torch_opt, ref, range(3))
    saved = copy.deepcopy(fused.state_dict())
    assert saved["state"].keys() == torch_opt.state_dict()["state"].keys()
    # the fused state loads into torch.optim and into our eager path; all continue alike
    lr = hp["lr"]
    others = []
    for make in (lambda g: getattr(torch.optim, TORCH[algo])(g, foreach=False, **hp),
                 lambda g: ours.create(algo, g, **hp)):
        params = [torch.nn.Parameter(p.detach().clone()) for p in mine]
        opt = make(_groups(params, lr))
        _load_as_forloop(opt, saved)
        others.append((opt, params))
    # and torch's state loads into the fused path
    back = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    fused_back = ours.create(algo, _groups(back, lr), fused=True, **hp)
    fused_back.load_state_dict(copy.deepcopy(torch_opt.state_dict()))
    for opt, params in [(fused, mine), (torch_opt, ref), *others, (fused_back, back)]:
        _run(opt, params, range(3, 6))
    for _, params in [*others, (fused_back, back)]:
        _assert_close(params, ref, algo)
    _assert_close(mine, ref, algo)


@pytest.mark.parametrize("direct_min", [1 << 12, 4], ids=["packed", "in-place"])
def test_load_state_dict_rebuilds_the_flat_buffers(direct_min, monkeypatch):
    monkeypatch.setattr(_fused, "DIRECT_MIN_NUMEL", direct_min)
    fused, mine, torch_opt, ref = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(2))
    saved, saved_params = copy.deepcopy(fused.state_dict()), [p.detach().clone() for p in mine]
    _run(fused, mine, range(2, 4))  # moves on; its flat buffers now hold step-4 state
    with torch.no_grad():
        for p, s in zip(mine, saved_params, strict=True):
            p.copy_(s)
    fused.load_state_dict(saved)  # back to step 2: stale buffers must not be used
    with torch.no_grad():
        for p, s in zip(ref, saved_params, strict=True):
            p.copy_(s)
    _load_as_forloop(torch_opt, saved)
    _run(fused, mine, range(2, 4))
    _run(torch_opt, ref, range(2, 4))
    _assert_close(mine, ref, "adam")
    assert float(fused.state[mine[0]]["step"]) == 4.0


def test_add_param_group_after_steps():
    fused, mine, torch_opt, ref = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(2))
    _run(torch_opt, ref, range(2))
    extra_m, extra_r = _params(seed=3)[:2], _params(seed=3)[:2]
    fused.add_param_group({"params": extra_m, "lr": 0.03})
    torch_opt.add_param_group({"params": extra_r, "lr": 0.03})
    _run(fused, mine + extra_m, range(2, 5))
    _run(torch_opt, ref + extra_r, range(2, 5))
    _assert_close(mine + extra_m, ref + extra_r, "adam")


def test_replaced_state_tensor_is_picked_up():
    fused, mine, torch_opt, ref = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(2))
    _run(torch_opt, ref, range(2))
    for opt, ps in ((fused, mine), (torch_opt, ref)):
        opt.state[ps[0]]["exp_avg"] = torch.zeros_like(ps[0])  # by hand, not in place
    _run(fused, mine, range(2, 4))
    _run(torch_opt, ref, range(2, 4))
    _assert_close(mine, ref, "adam")


def test_tensor_hyperparameters():
    """Tensor weight_decay and betas (torch accepts them) run compiled as their values."""
    hp = {"lr": torch.tensor(0.01), "weight_decay": torch.tensor(0.1),
          "betas": (torch.tensor(0.8), torch.tensor(0.99))}
    fused, mine, torch_opt, ref = _pair("adam", hp)
    _run(fused, mine, range(STEPS))
    _run(torch_opt, ref, range(STEPS))
    _assert_close(mine, ref, "adam")


def test_complex_params_take_the_eager_rule():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(3, 2, dtype=torch.complex64, generator=gen)
    mine, ref = [torch.nn.Parameter(base.clone())], [torch.nn.Parameter(base.clone())]
    fused = ours.Adam(mine, lr=0.01, fused=True)
    torch_opt = torch.optim.Adam(ref, lr=0.01, foreach=False)
    _run(fused, mine, range(3), skip=None)
    _run(torch_opt, ref, range(3), skip=None)
    torch.testing.assert_close(mine[0].detach(), ref[0].detach())


@pytest.mark.parametrize("algo", ["sgd", "adagrad"])
def test_sparse_grads_take_the_eager_rule(algo):
    """SGD and Adagrad accept sparse gradients (as torch does): those params go to the eager
    rule, the dense ones of the same group to the compiled one."""
    gen = torch.Generator().manual_seed(12)
    base = [torch.randn(6, 3, generator=gen), torch.randn(5, generator=gen)]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused = ours.create(algo, mine, lr=0.1, fused=True)
    torch_opt = getattr(torch.optim, TORCH[algo])(ref, lr=0.1, foreach=False)
    for _ in range(STEPS):
        rows = torch.randperm(6, generator=gen)[:2].unsqueeze(0)
        sparse = torch.sparse_coo_tensor(
            rows, torch.randn(2, 3, generator=gen), (6, 3), check_invariants=True
        )
        dense = torch.randn(5, generator=gen)
        mine[0].grad, mine[1].grad = sparse.clone(), dense.clone()
        ref[0].grad, ref[1].grad = sparse.clone(), dense.clone()
        fused.step()
        torch_opt.step()
    assert torch.equal(mine[0], ref[0])  # the eager rule: bit-identical
    _assert_close(mine, ref, algo)


@pytest.mark.parametrize(
    "case", [("sgd", {"lr": 0.1, "momentum": 0.9}), ("adam", {"lr": 0.01, "amsgrad": True})],
    ids=_case_id,
)
def test_large_params_are_updated_in_place(case, monkeypatch):
    """Params above DIRECT_MIN_NUMEL skip the flat copy: the rule runs on each where it is."""
    monkeypatch.setattr(_fused, "DIRECT_MIN_NUMEL", 4)
    algo, hp = case
    shapes = [(3, 4)] * 5 + [(5,)] * 4 + [(7, 3), (2,)]  # ten direct params, one packed
    gen = torch.Generator().manual_seed(5)
    base = [torch.randn(s, generator=gen) for s in shapes]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused = ours.create(algo, mine, fused=True, **hp)
    torch_opt = getattr(torch.optim, TORCH[algo])(ref, foreach=False, **hp)
    _run(fused, mine, range(STEPS), skip=None)
    _run(torch_opt, ref, range(STEPS), skip=None)
    _assert_close(mine, ref, algo)
    _assert_states_close(fused, torch_opt, mine, ref, algo)
    key = ("momentum_buffer", "exp_avg")[algo == "adam"]
    ptrs = {fused.state[p][key].untyped_storage().data_ptr() for p in mine[:10]}
    assert len(ptrs) == 10  # direct params keep a state tensor of their own


def test_packed_params_live_in_the_flat_buffer_and_rebinding_is_seen():
    fused, mine, torch_opt, ref = _pair("adam", {"lr": 0.01})
    _run(fused, mine, range(2))
    _run(torch_opt, ref, range(2))
    storages = {p.untyped_storage().data_ptr() for p in mine[:4]}  # [4] has no grad
    assert len(storages) == 1  # group 0's small params now share one buffer
    with torch.no_grad():
        mine[0].data = mine[0].data.clone() + 1.0  # rebinding: must not be overwritten
        ref[0].data = ref[0].data.clone() + 1.0
    _run(fused, mine, range(2, 4))
    _run(torch_opt, ref, range(2, 4))
    _assert_close(mine, ref, "adam")


@pytest.mark.parametrize(
    "case",
    [("sgd", {"lr": 0.1, "momentum": 0.9}), ("sgd", {"lr": 0.1}),
     ("adam", {"lr": 0.01, "weight_decay": 0.1}), ("rmsprop", {"lr": 0.01, "centered": True}),
     ("adadelta", {})],
    ids=_case_id,
)
def test_direct_params_share_one_kernel_called_without_dynamo(case, monkeypatch):
    """Params of many sizes above DIRECT_MIN_NUMEL: one compiled kernel, which later steps
    call directly (no Dynamo call, no recompile), with results matching torch's for-loop."""
    algo, hp = case
    sizes = [_fused.DIRECT_MIN_NUMEL, 100_000, 70_001, _fused.DIRECT_MIN_NUMEL + 3] * 3
    gen = torch.Generator().manual_seed(7)
    base = [torch.randn(n, generator=gen) for n in sizes]
    base[1] = base[1].view(400, 250)  # a 2-D parameter is updated through its 1-D view
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused = ours.create(algo, mine, fused=True, **hp)
    torch_opt = getattr(torch.optim, TORCH[algo])(ref, foreach=False, **hp)
    _run(fused, mine, range(2), skip=None)  # SGD's second step is the first with a buffer
    _run(torch_opt, ref, range(2), skip=None)
    compiled, dynamo_calls = _fused.compile_count(), []
    through_dynamo = _direct.DirectRule.through_dynamo
    monkeypatch.setattr(
        _direct.DirectRule, "through_dynamo",
        lambda self, *a: dynamo_calls.append(1) or through_dynamo(self, *a),
    )
    _run(fused, mine, range(2, STEPS), skip=None)
    _run(torch_opt, ref, range(2, STEPS), skip=None)
    assert _fused.compile_count() == compiled
    assert not dynamo_calls
    runners = [r for (rule, _), r in _direct._DIRECT.items() if rule is fused.rule and r.kernel]
    assert runners and all(r.fast is not None for r in runners)  # inductor's C++ kernel itself
    _assert_close(mine, ref, algo)
    _assert_states_close(fused, torch_opt, mine, ref, algo)


def test_direct_params_with_non_contiguous_grads():
    """A strided or transposed gradient cannot be handed to the kernel as is: it is flattened
    into a copy first, and the results still match torch."""
    n = _fused.DIRECT_MIN_NUMEL
    gen = torch.Generator().manual_seed(11)
    base = [torch.randn(n, generator=gen), torch.randn(n // 256, 256, generator=gen)]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused = ours.Adam(mine, lr=0.01, fused=True)
    torch_opt = torch.optim.Adam(ref, lr=0.01, foreach=False)
    for step in range(STEPS):
        strided = torch.randn(2 * n, generator=gen)[::2]
        grads = [strided, torch.randn(256, n // 256, generator=gen).t()]
        if step == 0:
            grads = [g.contiguous() for g in grads]  # the first call compiles on dense ones
        for p, q, g in zip(mine, ref, grads, strict=True):
            p.grad, q.grad = g, g.clone()
        fused.step()
        torch_opt.step()
    _assert_close(mine, ref, "adam")


class _Generated:
    """Stands in for what inductor returns: ``source_code`` and the bound ``call``."""

    def __init__(self, body: str) -> None:
        self.source_code = f"class Runner:\n    def call(self, args):\n{body}"
        namespace: dict[str, object] = {"cpp_fused_k_0": print}
        exec(self.source_code, namespace)
        self.current_callable = namespace["Runner"]().call  # type: ignore[operator]


def test_kernel_calls_reads_inductor_call_and_refuses_anything_else():
    plain = """        arg0_1, arg1_1, arg2_1 = args
        args.clear()
        s3 = arg0_1
        assert_size_stride_grouped((arg1_1, arg2_1), ((s3, ), (s3, )), ((1, ), (1, )), 'input')
        cpp_fused_k_0(arg2_1, arg1_1, arg1_1, s3, 2)
        del arg1_1
        return ()
"""
    ((kernel, where),) = _direct.kernel_calls(_Generated(plain))
    assert kernel is print and where == [2, 1, 1, 0, "2"]
    allocating = plain.replace("        del arg1_1\n", "        buf0 = empty_strided_cpu((s3, ))\n")
    returning = plain.replace("return ()", "return (arg1_1, )")
    for body in (allocating, returning):
        assert _direct.kernel_calls(_Generated(body)) is None


def test_direct_kernel_is_not_used_on_another_signature(monkeypatch):
    """A changed constant hyperparameter (baked into the kernel) gets a kernel of its own."""
    monkeypatch.setattr(_fused, "DIRECT_MIN_NUMEL", 64)
    sizes = [64, 100, 257]
    gen = torch.Generator().manual_seed(8)
    base = [torch.randn(n, generator=gen) for n in sizes]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused = ours.Adam(mine, lr=0.01, fused=True)
    torch_opt = torch.optim.Adam(ref, lr=0.01, foreach=False)
    for step in range(STEPS):
        for opt in (fused, torch_opt):
            opt.param_groups[0]["weight_decay"] = 0.1 * step
            opt.param_groups[0]["betas"] = (0.9, 0.99 if step % 2 else 0.999)
        _run(fused, mine, range(step, step + 1), skip=None)
        _run(torch_opt, ref, range(step, step + 1), skip=None)
    _assert_close(mine, ref, "adam")


def test_many_signatures_fall_back_to_dynamo(monkeypatch):
    """Past MAX_DIRECT_SIGNATURES kernels for one rule, a new signature goes through Dynamo."""
    monkeypatch.setattr(_fused, "DIRECT_MIN_NUMEL", 64)
    monkeypatch.setattr(_direct, "MAX_DIRECT_SIGNATURES", 0)
    gen = torch.Generator().manual_seed(9)
    base = [torch.randn(n, generator=gen) for n in (64, 65, 300)]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused = ours.RMSprop(mine, lr=0.01, momentum=0.5, fused=True)
    torch_opt = torch.optim.RMSprop(ref, lr=0.01, momentum=0.5, foreach=False)
    known = dict(_direct._DIRECT)
    _run(fused, mine, range(STEPS), skip=None)
    _run(torch_opt, ref, range(STEPS), skip=None)
    assert _direct._DIRECT == known
    _assert_close(mine, ref, "rmsprop")

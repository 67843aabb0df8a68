"""``fused=True`` (the compiled rule on flat buffers and chunks) against the reference for-loop.

Every algorithm of the table in optim_cases.py (torch's and the other references': NAdam, Lion,
Schedule-Free…) runs twice (its typical setting, then its main flags together) beside its
reference's for-loop path. Tolerances are the ones torch
allows between its own fused and for-loop optimizers (``test_fused_matches_forloop``: float64
atol=4.5e-7/rtol=2.2e-6, float32 per row). The rest checks the layout: packed parameters live
in flat buffers, large ones keep their own state and share compiled calls, a state_dict crosses
to torch and back, the plan follows load_state_dict, new groups and state replaced by hand.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from optim_cases import ALGOS, BY_NAME, Algo

import optimlab.optim as ours
from optimlab.optim import _base, _compile, _fused

STEPS = 5


def _tol(algo: Algo, dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float64:
        return {"atol": 4.5e-7, "rtol": 2.2e-6}
    atol, rtol = algo.fused_tol32
    return {"atol": atol, "rtol": rtol}


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


def _grads(params: list[torch.Tensor], step: int, skip: int | None) -> list[torch.Tensor | None]:
    gen = torch.Generator().manual_seed(1000 + step)
    return [None if i == skip else torch.randn(p.shape, generator=gen, dtype=p.dtype)
            for i, p in enumerate(params)]


def _run(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: range,
         skip: int | None = 4) -> None:
    for step in steps:
        for p, g in zip(params, _grads(params, step, skip), strict=True):
            p.grad = g
        opt.step()


def _pair(algo: Algo, hp: dict[str, object], mine: list[torch.Tensor],
          ref: list[torch.Tensor], groups: bool = True):
    """``algo`` with fused=True over ``mine``, its reference's for-loop over ``ref`` (both in
    train mode where the algorithm has one, as Schedule-Free)."""
    lr = float(hp.get("lr", 1.0))  # type: ignore[arg-type]
    fused = algo.ours(_groups(mine, lr) if groups else mine, fused=True, **hp)
    if hasattr(fused, "train"):
        fused.train()
    reference = algo.reference(_groups(ref, lr) if groups else ref, **hp)
    return fused, reference


def _adam_pair(**hp: object):
    mine, ref = _params(), _params()
    fused, torch_opt = _pair(BY_NAME["adam"], {"lr": 0.01, **hp}, mine, ref)
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


def _assert_close(a: list[torch.Tensor], b: list[torch.Tensor], algo: Algo) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.detach(), y.detach(), **_tol(algo, x.dtype))


def _assert_states_close(mine, ref, params_m, params_r, algo: Algo) -> None:
    for pm, pr in zip(params_m, params_r, strict=True):
        sm, sr = mine.state.get(pm, {}), ref.state.get(pr, {})
        assert sorted(sm) == sorted(sr)
        for key in sr:
            if isinstance(sr[key], torch.Tensor):
                torch.testing.assert_close(sm[key].float(), sr[key].float(),
                                           **_tol(algo, pm.dtype))


def _setting_params():
    out = []
    for algo in ALGOS:
        out.append(pytest.param(algo, dict(algo.hparams), id=f"{algo}-typical"))
        if algo.flags:
            flags = {**algo.hparams, **algo.flags}
            out.append(pytest.param(algo, flags, id=f"{algo}-{'-'.join(algo.flags)}"))
    return out


@pytest.mark.parametrize(("algo", "hp"), _setting_params())
def test_fused_matches_the_reference_forloop(algo, hp):
    mine, ref = _params(), _params()
    fused, reference = _pair(algo, hp, mine, ref)
    _run(fused, mine, range(STEPS))
    _run(reference, ref, range(STEPS))
    _assert_close(mine, ref, algo)
    _assert_states_close(fused, reference, mine, ref, algo)
    # grad None: no state created (Adagrad, like torch, creates it in its constructor)
    assert bool(fused.state.get(mine[4])) == bool(reference.state.get(ref[4]))
    assert fused._fused_plans, "the fused path did not run"


def test_state_is_views_into_one_flat_buffer_per_key():
    fused, mine, _, _ = _adam_pair()
    _run(fused, mine, range(2))
    bases = {fused.state[p]["exp_avg"].untyped_storage().data_ptr() for p in mine[:4]}
    assert len(bases) == 1  # the four params of group 0 share one exp_avg buffer


def test_lr_change_does_not_recompile():
    fused, mine, torch_opt, ref = _adam_pair()
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
    _assert_close(mine, ref, BY_NAME["adam"])


def test_float64_and_float32_groups():
    p32, p64 = _params(torch.float32), _params(torch.float64, seed=1)
    r32, r64 = _params(torch.float32), _params(torch.float64, seed=1)
    fused = ours.Adam([{"params": p32}, {"params": p64, "lr": 0.02}], lr=0.01, fused=True)
    ref = torch.optim.Adam([{"params": r32}, {"params": r64, "lr": 0.02}], lr=0.01, foreach=False)
    for opt, ps in ((fused, p32 + p64), (ref, r32 + r64)):
        _run(opt, ps, range(STEPS), skip=None)
    _assert_close(p32 + p64, r32 + r64, BY_NAME["adam"])


def test_params_with_different_step_counts():
    fused, mine, torch_opt, ref = _adam_pair()
    _run(fused, mine, range(2), skip=0)  # param 0 starts two steps late
    _run(torch_opt, ref, range(2), skip=0)
    _run(fused, mine, range(2, 5), skip=None)
    _run(torch_opt, ref, range(2, 5), skip=None)
    assert float(fused.state[mine[0]]["step"]) == 3.0
    assert float(fused.state[mine[1]]["step"]) == 5.0
    _assert_close(mine, ref, BY_NAME["adam"])
    _assert_states_close(fused, torch_opt, mine, ref, BY_NAME["adam"])


CROSSING_HP = {"sgd": {"lr": 0.01, "momentum": 0.9}, "adam": {"lr": 0.01, "amsgrad": True},
               "nadam": {"lr": 0.01, "weight_decay": 0.1}}  # NAdam: a 0-dim state per param


@pytest.mark.parametrize("pack_max", [1 << 14, 4], ids=["packed", "large"])
@pytest.mark.parametrize("name", list(CROSSING_HP))
def test_state_dict_crosses_to_torch_and_eager_and_back(name, pack_max, monkeypatch):
    """Packed (views into flat buffers) or large (own tensors), the fused state_dict is
    torch's, in both directions."""
    monkeypatch.setattr(_fused, "PACK_MAX_NUMEL", pack_max)
    algo = BY_NAME[name]
    hp = CROSSING_HP[name]
    mine, ref = _params(), _params()
    fused, torch_opt = _pair(algo, hp, mine, ref)
    _run(fused, mine, range(3))
    _run(torch_opt, ref, range(3))
    saved = copy.deepcopy(fused.state_dict())
    assert saved["state"].keys() == torch_opt.state_dict()["state"].keys()
    # the fused state loads into torch.optim and into our eager path; all continue alike
    others = []
    for make in (lambda g: algo.theirs(g, foreach=False, **hp), lambda g: algo.ours(g, **hp)):
        params = [torch.nn.Parameter(p.detach().clone()) for p in mine]
        opt = make(_groups(params, 0.01))
        _load_as_forloop(opt, saved)
        others.append((opt, params))
    # and torch's state loads into the fused path
    back = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    fused_back = algo.ours(_groups(back, 0.01), fused=True, **hp)
    fused_back.load_state_dict(copy.deepcopy(torch_opt.state_dict()))
    for opt, params in [(fused, mine), (torch_opt, ref), *others, (fused_back, back)]:
        _run(opt, params, range(3, 6))
    for _, params in [*others, (fused_back, back), (fused, mine)]:
        _assert_close(params, ref, algo)


@pytest.mark.parametrize("pack_max", [1 << 14, 4], ids=["packed", "large"])
def test_zero_dim_state_stays_one_scalar_per_parameter(pack_max, monkeypatch):
    """NAdam's ``mu_product`` is a 0-dim tensor of each parameter in torch (like ``step``):
    the fused path keeps it one, of torch's dtype, each parameter its own tensor."""
    monkeypatch.setattr(_fused, "PACK_MAX_NUMEL", pack_max)
    algo = BY_NAME["nadam"]
    mine, ref = _params(), _params()
    fused, reference = _pair(algo, {"lr": 0.01}, mine, ref)
    _run(fused, mine, range(STEPS))
    _run(reference, ref, range(STEPS))
    ours_mu = [fused.state[p]["mu_product"] for p in mine if p in fused.state]
    torch_mu = [reference.state[p]["mu_product"] for p in ref if p in reference.state]
    assert [(t.shape, t.dtype) for t in ours_mu] == [(t.shape, t.dtype) for t in torch_mu]
    assert len({t.untyped_storage().data_ptr() for t in ours_mu}) == len(ours_mu)
    tol = _tol(algo, torch.float32)
    torch.testing.assert_close(torch.stack(ours_mu), torch.stack(torch_mu), **tol)
    _assert_close(mine, ref, algo)


@pytest.mark.parametrize("name", ["sgd_schedulefree", "adamw_schedulefree"])
def test_per_step_hyperparameters_compile_once(name):
    """Schedule-Free's averaging weight ``ckp1`` (and AdamW's step count ``k``) change every
    step: listed in ``tensor_hyperparams`` they are inputs of the graph, so 50 steps compile
    on the first step only (as constants they compiled a variant per step)."""
    algo = BY_NAME[name]
    mine, ref = _params(), _params()
    fused, reference = _pair(algo, {**algo.hparams, **algo.flags}, mine, ref)
    _run(fused, mine, range(1))
    _run(reference, ref, range(1))
    compiled = _fused.compile_count()
    _run(fused, mine, range(1, 50))
    _run(reference, ref, range(1, 50))
    assert _fused.compile_count() == compiled
    _assert_close(mine, ref, algo)


@pytest.mark.parametrize("pack_max", [1 << 14, 4], ids=["packed", "large"])
def test_load_state_dict_rebuilds_the_flat_buffers(pack_max, monkeypatch):
    monkeypatch.setattr(_fused, "PACK_MAX_NUMEL", pack_max)
    fused, mine, torch_opt, ref = _adam_pair()
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
    _assert_close(mine, ref, BY_NAME["adam"])
    assert float(fused.state[mine[0]]["step"]) == 4.0


def test_add_param_group_after_steps():
    fused, mine, torch_opt, ref = _adam_pair()
    _run(fused, mine, range(2))
    _run(torch_opt, ref, range(2))
    extra_m, extra_r = _params(seed=3)[:2], _params(seed=3)[:2]
    fused.add_param_group({"params": extra_m, "lr": 0.03})
    torch_opt.add_param_group({"params": extra_r, "lr": 0.03})
    _run(fused, mine + extra_m, range(2, 5))
    _run(torch_opt, ref + extra_r, range(2, 5))
    _assert_close(mine + extra_m, ref + extra_r, BY_NAME["adam"])


def test_replaced_state_tensor_is_picked_up():
    fused, mine, torch_opt, ref = _adam_pair()
    _run(fused, mine, range(2))
    _run(torch_opt, ref, range(2))
    for opt, ps in ((fused, mine), (torch_opt, ref)):
        opt.state[ps[0]]["exp_avg"] = torch.zeros_like(ps[0])  # by hand, not in place
    _run(fused, mine, range(2, 4))
    _run(torch_opt, ref, range(2, 4))
    _assert_close(mine, ref, BY_NAME["adam"])


def test_tensor_hyperparameters():
    """Tensor weight_decay and betas (torch accepts them) run compiled as their values."""
    fused, mine, torch_opt, ref = _adam_pair(
        lr=torch.tensor(0.01), weight_decay=torch.tensor(0.1),
        betas=(torch.tensor(0.8), torch.tensor(0.99)),
    )
    _run(fused, mine, range(STEPS))
    _run(torch_opt, ref, range(STEPS))
    _assert_close(mine, ref, BY_NAME["adam"])


def test_complex_params_take_the_eager_rule():
    """The eager rule is torch's for-loop operation for operation: bit-identical."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(3, 2, dtype=torch.complex64, generator=gen)
    mine, ref = [torch.nn.Parameter(base.clone())], [torch.nn.Parameter(base.clone())]
    fused, torch_opt = _pair(BY_NAME["adam"], {"lr": 0.01}, mine, ref, groups=False)
    _run(fused, mine, range(3), skip=None)
    _run(torch_opt, ref, range(3), skip=None)
    assert torch.equal(mine[0], ref[0])
    assert not fused._fused_plans  # nothing went through the compiled path


@pytest.mark.parametrize("name", ["sgd", "adagrad"])
def test_sparse_grads_take_the_eager_rule(name):
    """SGD and Adagrad accept sparse gradients (as torch does): those params go to the eager
    rule (bit-identical), the dense ones of the same group to the compiled one."""
    algo = BY_NAME[name]
    gen = torch.Generator().manual_seed(12)
    base = [torch.randn(6, 3, generator=gen), torch.randn(5, generator=gen)]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused, torch_opt = _pair(algo, {"lr": 0.1}, mine, ref, groups=False)
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
    assert torch.equal(mine[0], ref[0])
    _assert_close(mine, ref, algo)
    assert fused._fused_plans  # the dense one did go through the compiled path


def _counting_calls(monkeypatch) -> list[int]:
    """Record the number of tensors in every call of a compiled rule."""
    calls: list[int] = []
    compiled_rule = _fused.compiled_rule

    def counted(rule, variant):
        fn = compiled_rule(rule, variant)
        return lambda rule, params, *rest: calls.append(len(params)) or fn(rule, params, *rest)

    monkeypatch.setattr(_fused, "compiled_rule", counted)
    return calls


@pytest.mark.parametrize(("name", "hp"), [("sgd", {"lr": 0.1, "momentum": 0.9}),
                                          ("adam", {"lr": 0.01, "amsgrad": True}),
                                          ("rmsprop", {"lr": 0.01, "centered": True})])
def test_large_params_keep_their_state_and_share_calls(name, hp, monkeypatch):
    """Params of PACK_MAX_NUMEL elements or more are not copied: each keeps state tensors of
    its own, and those of one size go CHUNK at a time to the compiled rule."""
    monkeypatch.setattr(_fused, "PACK_MAX_NUMEL", 12)
    algo = BY_NAME[name]
    shapes = [(3, 4)] * 10 + [(5, 3)] * 2 + [(2,)]  # a chunk of 8 + 2 + 2 singles, one packed
    gen = torch.Generator().manual_seed(5)
    base = [torch.randn(s, generator=gen) for s in shapes]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused, torch_opt = _pair(algo, hp, mine, ref, groups=False)
    calls = _counting_calls(monkeypatch)
    _run(fused, mine, range(STEPS), skip=None)
    _run(torch_opt, ref, range(STEPS), skip=None)
    _assert_close(mine, ref, algo)
    _assert_states_close(fused, torch_opt, mine, ref, algo)
    assert sorted(calls[:6]) == [1, 1, 1, 1, 1, _fused.CHUNK]  # one step's calls
    key = {"sgd": "momentum_buffer", "adam": "exp_avg", "rmsprop": "square_avg"}[name]
    ptrs = {fused.state[p][key].untyped_storage().data_ptr() for p in mine[:12]}
    assert len(ptrs) == 12


def test_one_graph_serves_params_of_every_size(monkeypatch):
    """Sizes change from call to call without a graph each (the length is symbolic)."""
    monkeypatch.setattr(_fused, "PACK_MAX_NUMEL", 64)
    gen = torch.Generator().manual_seed(7)
    base = [torch.randn(n, generator=gen) for n in (64, 100, 257, 1000, 70, 4096)]
    base[3] = base[3].view(40, 25)  # a 2-D parameter is updated through its 1-D view
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused, torch_opt = _pair(BY_NAME["adagrad"], {"lr": 0.1, "lr_decay": 0.01}, mine, ref,
                             groups=False)
    compiled = _fused.compile_count()
    _run(fused, mine, range(STEPS), skip=None)
    _run(torch_opt, ref, range(STEPS), skip=None)
    assert _fused.compile_count() - compiled <= 2  # sizes seen first, then a symbolic one
    _assert_close(mine, ref, BY_NAME["adagrad"])


def test_large_params_with_non_contiguous_grads(monkeypatch):
    """A strided or transposed gradient is read through a flat copy; results match torch."""
    monkeypatch.setattr(_fused, "PACK_MAX_NUMEL", 64)
    n = 1024
    gen = torch.Generator().manual_seed(11)
    base = [torch.randn(n, generator=gen), torch.randn(n // 32, 32, generator=gen)]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused, torch_opt = _pair(BY_NAME["adam"], {"lr": 0.01}, mine, ref, groups=False)
    for _ in range(STEPS):
        grads = [torch.randn(2 * n, generator=gen)[::2],
                 torch.randn(32, n // 32, generator=gen).t()]
        for p, q, g in zip(mine, ref, grads, strict=True):
            p.grad, q.grad = g, g.clone()
        fused.step()
        torch_opt.step()
    _assert_close(mine, ref, BY_NAME["adam"])


def test_changed_constant_hyperparameters_take_effect():
    """weight_decay and betas are constants of the compiled graph: a change is a new variant,
    never a stale kernel."""
    gen = torch.Generator().manual_seed(8)
    base = [torch.randn(n, generator=gen) for n in (64, 100, 257)]
    mine = [torch.nn.Parameter(t.clone()) for t in base]
    ref = [torch.nn.Parameter(t.clone()) for t in base]
    fused, torch_opt = _pair(BY_NAME["adam"], {"lr": 0.01}, mine, ref, groups=False)
    for step in range(STEPS):
        for opt in (fused, torch_opt):
            opt.param_groups[0]["weight_decay"] = 0.1 * (step % 2)
            opt.param_groups[0]["betas"] = (0.9, 0.99 if step % 2 else 0.999)
        _run(fused, mine, range(step, step + 1), skip=None)
        _run(torch_opt, ref, range(step, step + 1), skip=None)
    _assert_close(mine, ref, BY_NAME["adam"])


def test_past_max_variants_the_eager_rule_runs(monkeypatch):
    """A rule with MAX_VARIANTS compiled variants takes any further one eagerly (bit-identical
    to the for-loop), instead of compiling without end."""
    monkeypatch.setattr(_fused, "compiled_rule", lambda rule, variant: None)
    mine, ref = _params(), _params()
    fused, torch_opt = _pair(BY_NAME["rmsprop"], {"lr": 0.01, "momentum": 0.5}, mine, ref)
    _run(fused, mine, range(STEPS))
    _run(torch_opt, ref, range(STEPS))
    for a, b in zip(mine, ref, strict=True):
        assert torch.equal(a, b)
    assert float(fused.state[mine[0]]["step"]) == STEPS


def test_contract_is_built_from_the_class_table(monkeypatch):
    """The fast path gets the rule, state keys, this group's hyperparameters, the state and the
    optimizer's own init/eager step, typed, and nothing else."""
    seen = []
    monkeypatch.setattr(_base, "fused_step", lambda *args: seen.append(args))
    params = _params()
    opt = ours.Adam(_groups(params, 0.01), lr=0.01, fused=True)
    _run(opt, params, range(1))
    assert len(seen) == 2  # one call per group
    contract, group, with_grad, plans = seen[0]
    assert isinstance(contract, _fused.RuleContract)
    assert contract.rule is ours.adam_update and contract.state_keys == ours.Adam.state_keys
    assert dict(contract.hyperparams) == opt._rule_kwargs(opt.param_groups[0])
    assert contract.state is opt.state and plans is opt._fused_plans
    assert group is opt.param_groups[0] and with_grad == params[:4]  # params[4] has no grad
    with pytest.raises(AttributeError):
        contract.rule = ours.sgd_update  # type: ignore[misc]  # frozen


def test_importing_optim_sets_no_environment():
    """No side effects at import: inductor's cache directory stays the user's business."""
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    code = "import os, optimlab.optim; print('TORCHINDUCTOR_CACHE_DIR' in os.environ)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"


def test_optim_reads_no_compiler_internals():
    """The fast path uses torch.compile's public API: no parsing of generated code, no
    Dynamo-private graph metadata, no rewritten code objects, no generated source."""
    forbidden = ("import ast", "grapharg", "source_code", "co_name", "exec(",
                 "example_value", "torch._inductor")
    for path in (Path(ours.__file__).parent).glob("*.py"):
        text = path.read_text()
        assert not [f for f in forbidden if f in text], path.name


def test_a_tensor_alpha_is_read_each_call():
    """``x.sub_(y, alpha=lr)`` with a 0-dim ``lr``: inductor 2.14 alone keeps the first lr it
    saw; the backend's rewrite (``x.sub_(y * lr)``) reads it every call."""
    def rule(p: torch.Tensor, g: torch.Tensor, lr: torch.Tensor) -> None:
        p.sub_(g, alpha=lr)

    compiled = torch.compile(rule, fullgraph=True, backend=_compile.hoisting_backend)
    moved = []
    for lr in (0.01, 0.005):
        p = torch.zeros(6)
        compiled(p, torch.ones(6), torch.tensor(lr, dtype=torch.float64))
        moved.append(-p[0].item())
    assert moved == pytest.approx([0.01, 0.005])


def test_a_float_made_symbolic_is_read_each_call():
    """A Python float that changes between calls becomes symbolic in Dynamo (``t.item()`` of a
    0-dim input). Inductor 2.14's ``lerp`` decomposition bakes such a weight's value at compile
    time into ``add(..., alpha=w - 1)`` (fused Schedule-Free SGD went wrong from its third
    step); the backend hands the graph the 0-dim tensor instead, read every call."""
    def rule(p: torch.Tensor, z: torch.Tensor, w: float) -> None:
        p.lerp_(z, w)
        p.mul_(w)

    compiled = torch.compile(rule, fullgraph=True, backend=_compile.hoisting_backend)
    for w in (1.0, 0.5, 0.3, 0.25):
        p, expected, z = torch.ones(6), torch.ones(6), torch.zeros(6)
        compiled(p, z, w)
        rule(expected, z, w)
        torch.testing.assert_close(p, expected)

"""The torch.optim API: signatures, defaults, errors (torch's own error inputs), registry, hooks."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
from optim_cases import ALGOS, BY_NAME, TORCH_ALGOS, UNHONOURED, _slug, make_params, step_both
from torch.testing._internal.common_optimizers import OptimizerErrorEnum

import optimlab.optim as oo
from optimlab.errors import UserError
from optimlab.optim import _base

# Keyword-only options ours adds where torch has none.
ADDED = {name: ["fused"] for name in ("rmsprop", "adadelta", "radam", "adamax", "nadam")}


def _shape(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_signature_matches_torch(algo):
    """Same names, order, defaults and kinds; additions only as trailing keyword-only ones."""
    ours, theirs = _shape(algo.ours), _shape(algo.theirs)
    assert ours[: len(theirs)] == theirs
    added = ours[len(theirs) :]
    assert [name for name, _, _ in added] == ADDED.get(algo.name, [])
    assert all(kind is inspect.Parameter.KEYWORD_ONLY and d is None for _, kind, d in added)


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_defaults_match_torch(algo):
    ours = algo.ours(make_params(torch.float32)).defaults
    theirs = algo.theirs(make_params(torch.float32)).defaults
    assert {k: v for k, v in ours.items() if k not in ADDED.get(algo.name, [])} == theirs


def _error_params():
    """torch's error inputs for each algorithm: the CPU ones, plus the CUDA-only ones when a
    GPU can build them (else one visible skip per algorithm)."""
    out = []
    for algo in TORCH_ALGOS:
        cpu = algo.error_inputs("cpu", torch.float32)
        cpu_descs = {e.optimizer_error_input.desc for e in cpu}
        for e in cpu:
            out.append(
                pytest.param(algo, e, id=f"{algo.name}-{_slug(e.optimizer_error_input.desc)}")
            )
        try:
            cuda = algo.error_inputs("cuda", torch.float32)
        except (RuntimeError, AssertionError):  # no CUDA device: torch.empty(device="cuda")
            reason = "cuda-only error inputs need a CUDA device to build"
            out.append(
                pytest.param(
                    algo,
                    None,
                    id=f"{algo.name}-SKIP[{_slug(reason)}]",
                    marks=pytest.mark.skip(reason=reason),
                )
            )
            continue
        for e in cuda:
            if e.optimizer_error_input.desc not in cpu_descs:
                pid = f"{algo.name}-cuda-{_slug(e.optimizer_error_input.desc)}"
                out.append(pytest.param(algo, e, id=pid))
    return out


def _raise_from(cls, error_input):
    """Construct (and step, for step errors) ``cls`` on the input; return what it raised."""
    inp = error_input.optimizer_error_input
    params = inp.params
    if params is None:
        params = [torch.nn.Parameter(torch.randn(2, 3))]
    if issubclass(error_input.error_type, Warning):
        with pytest.warns(error_input.error_type, match=error_input.error_regex) as record:
            cls(params, **inp.kwargs)
        return record[0].message
    with pytest.raises(error_input.error_type, match=error_input.error_regex) as info:
        opt = cls(params, **inp.kwargs)
        if error_input.error_on == OptimizerErrorEnum.STEP_ERROR:
            opt.step()
    return info.value


@pytest.mark.parametrize(("algo", "error_input"), _error_params())
def test_torch_error_inputs_raise_like_torch(algo, error_input):
    """torch's own error inputs: same exception type and message as torch.optim."""
    theirs = _raise_from(algo.theirs, error_input)
    ours = _raise_from(algo.ours, error_input)
    assert str(ours) == str(theirs)


# Invalid hyperparameters beyond torch's samples: ours must raise exactly what torch raises.
BAD_VALUES = [
    ("sgd", {"lr": -0.1}),
    ("sgd", {"weight_decay": -1e-3}),
    ("sgd", {"nesterov": True}),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("adagrad", {"lr": -1.0}),
    ("adagrad", {"weight_decay": -0.5}),
    ("adagrad", {"initial_accumulator_value": -1.0}),
    ("adagrad", {"eps": -1e-10}),
    ("rmsprop", {"lr": -1e-2}),
    ("rmsprop", {"eps": -1.0}),
    ("rmsprop", {"weight_decay": -1.0}),
    ("rmsprop", {"alpha": -0.99}),
    ("adam", {"lr": -1e-3}),
    ("adam", {"eps": -1.0}),
    ("adam", {"betas": (0.9, 1.0)}),
    ("adam", {"lr": torch.tensor([1e-3, 1e-3])}),
    ("adamw", {"weight_decay": -1e-2}),
    ("adamw", {"betas": (-0.1, 0.999)}),
    ("adadelta", {"lr": -1.0}),
    ("adadelta", {"rho": -0.1}),
    ("adadelta", {"eps": -1e-6}),
    ("adadelta", {"weight_decay": -1.0}),
    ("adadelta", {"lr": torch.tensor([1.0, 2.0])}),
]


@pytest.mark.parametrize(("name", "kwargs"), BAD_VALUES, ids=[f"{n}-{k}" for n, k in BAD_VALUES])
def test_bad_hyperparameters_raise_like_torch(name, kwargs):
    algo = BY_NAME[name]
    params = [torch.nn.Parameter(torch.randn(2))]
    with pytest.raises(ValueError) as theirs:
        algo.theirs(params, **kwargs)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))) as mine:
        oo.create(name, params, **kwargs)
    assert _names_the_mistake(str(mine.value), kwargs), str(mine.value)


#: how torch's messages spell a parameter, where not by its own name
_SPELLED = {"lr": ("learning rate", "lr"), "eps": ("epsilon",), "betas": ("beta parameter",)}


def _names_the_mistake(message: str, kwargs: dict) -> bool:
    """The message names one of the parameters given and, if that one is a number (or a
    tuple of numbers), its bad value: "Invalid learning rate: -0.1", not "invalid value"."""
    for key, value in kwargs.items():
        if any(word in message.lower() for word in _SPELLED.get(key, (key,))):
            numbers = [v for v in (value if isinstance(value, tuple) else (value,))
                       if isinstance(v, float)]
            return not numbers or any(str(v) in message for v in numbers)
    return False


def test_names_the_mistake_refuses_vague_messages():
    assert _names_the_mistake("Invalid learning rate: -0.1", {"lr": -0.1})
    assert not _names_the_mistake("Invalid value", {"lr": -0.1})
    assert not _names_the_mistake("Invalid learning rate", {"lr": -0.1})


@pytest.mark.parametrize(
    "params",
    [[], [torch.randn(2, requires_grad=True) * 2], (t for t in [])],
    ids=["empty", "non-leaf", "empty-generator"],
)
@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_bad_params_raise_like_torch(algo, params):
    with pytest.raises(Exception) as theirs:
        algo.theirs(params)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
        algo.ours(params)


@pytest.mark.parametrize(
    "algo", [a for a in TORCH_ALGOS if a.name not in ("sgd", "adagrad")], ids=str
)
def test_sparse_gradients_rejected_naming_the_optimizer(algo):
    p = torch.nn.Parameter(torch.randn(4, 2))
    p.grad = torch.sparse_coo_tensor([[0]], torch.ones(1, 2), (4, 2))
    with pytest.raises(RuntimeError, match=f"^{algo.ours.__name__} does not support sparse"):
        algo.ours([p]).step()


@pytest.mark.parametrize("flag", UNHONOURED)
@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_unhonoured_flags_raise_not_implemented(algo, flag):
    if flag not in inspect.signature(algo.theirs).parameters:
        pytest.skip(f"torch.optim.{algo.theirs.__name__} has no {flag}")
    with pytest.raises(NotImplementedError, match=f"{flag}=True"):
        algo.ours(make_params(torch.float32), **{flag: True})
    opt = algo.ours(make_params(torch.float32))
    opt.param_groups[0][flag] = True  # e.g. set after construction: refused at step time
    with pytest.raises(NotImplementedError, match=flag):
        opt.step()


def test_registry_names_and_classes():
    assert oo.available() == tuple(sorted(oo.available()))
    assert {algo.name for algo in ALGOS} <= set(oo.available())
    for algo in ALGOS:
        opt = oo.create(algo.name.upper(), make_params(torch.float32), lr=0.5)
        assert type(opt) is algo.ours and isinstance(opt, torch.optim.Optimizer)
        assert opt.defaults["lr"] == 0.5


def test_registry_unknown_name_lists_valid_ones():
    valid = ", ".join(oo.available())
    with pytest.raises(oo.UnknownOptimizer, match=f"^unknown optimizer 'nosuch'; valid: {valid}$"):
        oo.create("nosuch", make_params(torch.float32))
    assert issubclass(oo.UnknownOptimizer, ValueError)
    assert not issubclass(oo.UnknownOptimizer, UserError)  # optim/ imports only torch


def test_registry_unknown_hyperparameter_is_a_type_error():
    with pytest.raises(TypeError, match="momentum"):
        oo.create("adam", make_params(torch.float32), momentum=0.9)


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_closure_hooks_zero_grad_and_add_param_group(algo):
    p = torch.nn.Parameter(torch.randn(3))
    opt = algo.ours([p])
    calls = []
    opt.register_step_pre_hook(lambda *_: calls.append("pre"))
    opt.register_step_post_hook(lambda *_: calls.append("post"))

    def closure():
        assert torch.is_grad_enabled()
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    expected = (p.detach() ** 2).sum()
    with torch.no_grad():  # step evaluates the closure with grad enabled all the same
        assert torch.equal(opt.step(closure), expected)
    assert calls == ["pre", "post"]
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros(3))
    opt.zero_grad()
    assert p.grad is None

    q = torch.nn.Parameter(torch.randn(2))
    opt.add_param_group({"params": [q], "lr": 0.25})
    q.grad, before = torch.ones(2), q.detach().clone()
    opt.step()
    assert opt.param_groups[1]["lr"] == 0.25 and not torch.equal(q, before)


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_lr_scheduler_drives_ours_like_torch(algo):
    sides = []
    for cls in (algo.ours, algo.theirs):
        params = make_params(torch.float32)
        opt = cls(params, foreach=False) if cls is algo.theirs else cls(params)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
        sides.append((opt, params, sched))
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        assert step_both([(o, p) for o, p, _ in sides], 5, gen) is None
        for _, _, sched in sides:
            sched.step()
    assert sides[0][0].param_groups[0]["lr"] == sides[1][0].param_groups[0]["lr"]


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_fused_groups_dispatch_to_fused_step(algo, monkeypatch):
    """``fused=True`` goes to the fast path with this class's table and the params that have
    grads; the default path never does."""
    seen = []
    monkeypatch.setattr(_base, "fused_step", lambda *args: seen.append(args))
    params = make_params(torch.float32)
    opt = algo.ours(params, fused=True)
    opt.step()  # no grads yet: nothing to update, but the group is dispatched
    assert step_both([(opt, params)], 1, torch.Generator()) is None
    assert len(seen) == 2
    contract, group, with_grad, _ = seen[1]
    assert contract.rule is algo.ours.rule and contract.state_keys == algo.ours.state_keys
    assert group is opt.param_groups[0]
    assert [id(p) for p in with_grad] == [id(p) for p in params if p.grad is not None]
    eager = algo.ours(make_params(torch.float32))
    eager.step()
    assert len(seen) == 2


@pytest.mark.parametrize("algo", TORCH_ALGOS, ids=str)
def test_amp_grad_scaler_drives_ours_like_torch(algo):
    """GradScaler unscales, skips inf steps and calls step(): same trajectory as torch's."""
    results = []
    for cls in (algo.ours, algo.theirs):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        opt = cls(model.parameters(), lr=0.01)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
        start = [p.detach().clone() for p in model.parameters()]
        for i in range(5):
            opt.zero_grad()
            loss = model(torch.ones(3, 4) * (i + 1)).pow(2).sum()
            if i == 2:
                loss = loss * float("inf")  # this step must be skipped
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        results.append([p.detach().clone() for p in model.parameters()])
        assert not any(torch.equal(a, b) for a, b in zip(start, results[-1], strict=True))
        assert all(torch.isfinite(p).all() for p in results[-1])
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


@pytest.mark.parametrize("algo", ALGOS, ids=str)
def test_class_table_matches_its_rule(algo):
    """``state_keys`` name the rule's tensors after (param, grad); ``hyperparams`` its keywords,
    and the generated call passes each of them through under its own name."""
    sig = inspect.signature(algo.ours.rule).parameters
    positional = [n for n, p in sig.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    keywords = {n for n, p in sig.items() if p.kind is p.KEYWORD_ONLY}
    state_names = {"sum": "state_sum"}  # Adagrad's rule calls torch's ``sum`` state_sum
    assert positional[2:] == [state_names.get(k, k) for k in algo.ours.state_keys]
    assert set(algo.ours.hyperparams) | {"step"} == keywords

    seen = {}
    state = {k: object() for k in algo.ours.state_keys[:1]}  # later keys absent -> None
    hp = {name: object() for name in algo.ours.hyperparams}
    algo.ours._rule_call(lambda *a, **k: seen.update(args=a, kwargs=k), "p", "g", state, 7.0, hp)
    assert seen["args"] == ("p", "g", *[state.get(k) for k in algo.ours.state_keys])
    assert seen["kwargs"] == {"step": 7.0, **hp}

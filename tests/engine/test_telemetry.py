"""Telemetry against the same step measured by hand, and the step-size formulas against the
update torch.optim (and optimlab.optim) actually make."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import optimlab.optim as ours
from optimlab.engine.telemetry import STEP_SIZES, Telemetry

CASES = [
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (torch.optim.Adam, {"lr": 0.01}),
    (torch.optim.Adam, {"lr": 0.01, "amsgrad": True}),
    (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (torch.optim.Adamax, {"lr": 0.01}),
    (torch.optim.RMSprop, {"lr": 0.01}),
    (torch.optim.RMSprop, {"lr": 0.01, "centered": True}),
    (torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01}),
    (torch.optim.Adadelta, {"lr": 1.0}),
    (ours.Adam, {"lr": 0.01}),
    (ours.Adamax, {"lr": 0.01}),
    (ours.RMSprop, {"lr": 0.01, "centered": True}),
    (ours.Adagrad, {"lr": 0.1, "lr_decay": 0.01}),
    (ours.Adadelta, {"lr": 1.0}),
]
IDS = [f"{c.__module__.split('.')[0]}.{c.__name__}-{k}" for c, k in CASES]


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    return torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)


def make_step(model, opt):
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_tags_equal_the_step_measured_by_hand(cls, kwargs):
    model = tiny_model()
    ref = copy.deepcopy(model)
    opt, ref_opt = cls(model.parameters(), **kwargs), cls(ref.parameters(), **kwargs)
    telemetry = Telemetry(model, opt)
    observed, plain = telemetry.observe(make_step(model, opt), 3), make_step(ref, ref_opt)
    for i in range(5):  # the 3rd call is measured; after it, pop() empties
        x, y = batch(i)
        if i == 2:
            before = {n: p.detach().clone() for n, p in ref.named_parameters()}
            ref_opt.zero_grad()
            nn.functional.mse_loss(ref(x), y).backward()
            grads = {n: p.grad.clone() for n, p in ref.named_parameters()}
            ref_opt.step()
            after = {n: p.detach().clone() for n, p in ref.named_parameters()}
            observed(x, y)
            values = telemetry.pop()
            assert telemetry.pop() == {}
        else:
            assert observed(x, y) == plain(x, y)  # the same trajectory, bitwise
            assert telemetry.pop() == {}
    for n, p in ref.named_parameters():
        assert torch.equal(p, dict(model.named_parameters())[n])
    names = [n for n, _ in ref.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for n in names:
        g, old = grads[n], before[n]
        delta = after[n] - old
        expect = {"l2_norm/grad/": g.norm(), "l2_norm/param/": old.norm(),
                  "l2_norm/update/": delta.norm(),
                  "l2_norm_ratio/update_param/": delta.norm() / old.norm(),
                  "cosine/update_grad/": torch.nn.functional.cosine_similarity(
                      delta.flatten(), -g.flatten(), dim=0)}
        for prefix, value in expect.items():
            assert values[prefix + n] == pytest.approx(float(value), rel=1e-5), prefix + n
    total = math.sqrt(sum(float(g.norm()) ** 2 for g in grads.values()))
    assert values["l2_norm/grad/global"] == pytest.approx(total, rel=1e-6)
    assert values["lr/group0"] == kwargs["lr"]
    adaptive = cls.__name__ in STEP_SIZES
    assert all((f"effective_lr/{n}" in values) == adaptive for n in names)
    if cls is torch.optim.SGD and "momentum" not in kwargs:
        assert values["cosine/update_grad/0.weight"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("cls,kwargs", [c for c in CASES if c[0].__name__ in STEP_SIZES],
                         ids=[i for i, c in zip(IDS, CASES, strict=True)
                              if c[0].__name__ in STEP_SIZES])
def test_step_size_is_the_factor_the_optimizer_applied(cls, kwargs):
    """Δ = −size·m (Adam's first moment, after AdamW's decay) or −size·g: per coordinate."""
    model = tiny_model()
    opt = cls(model.parameters(), **kwargs)
    step = make_step(model, opt)
    for i in range(3):
        step(*batch(i))
    keys, size_of = STEP_SIZES[cls.__name__]
    group = opt.param_groups[0]
    before = {p: {"param": p.detach().clone(), **{k: opt.state[p][k].clone() for k in keys}}
              for p in model.parameters()}
    step(*batch(3))
    for p in model.parameters():
        state, old = opt.state[p], before[p]["param"]
        size = size_of(state, group, before[p])
        delta = p.detach() - old
        if cls.__name__ == "AdamW":
            delta = delta + group["lr"] * group["weight_decay"] * old
        direction = state["exp_avg"] if "exp_avg" in state else p.grad
        torch.testing.assert_close(delta, -size * direction, rtol=2e-5, atol=1e-7)


def test_zero_update_gives_nan_cosine_and_unnamed_params_get_group_names():
    p = torch.zeros(3, requires_grad=True)
    model = nn.Module()
    opt = torch.optim.SGD([p], lr=0.0)
    telemetry = Telemetry(model, opt)

    def step(x, y):
        opt.zero_grad()
        (p * x).sum().backward()
        opt.step()
        return torch.zeros(())

    telemetry.observe(step, 1)(torch.ones(3), torch.ones(3))
    values = telemetry.pop()
    assert values["l2_norm/update/group0.param0"] == 0.0
    assert math.isnan(values["cosine/update_grad/group0.param0"])
    assert math.isnan(values["l2_norm_ratio/update_param/group0.param0"])  # ‖p‖ = 0
    assert values["l2_norm/grad/global"] == pytest.approx(math.sqrt(3))


# -- inside fit -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    from optimlab.data import load_dataset

    return load_dataset("digits", seed=0)


def _fit(data, telemetry, opt=torch.optim.Adam, epochs=3, **kw):
    from optimlab.engine import fit
    from optimlab.models import build_model

    model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
    result = fit(model, opt(model.parameters(), lr=1e-3), data, epochs=epochs, seed=2,
                 progress=False, telemetry=telemetry, **kw)
    return model, result


@pytest.mark.parametrize("opt", [torch.optim.Adam, ours.SGD, ours.Adadelta])
def test_fit_trajectory_bitwise_equal_with_and_without_telemetry(digits, opt):
    m_off, off = _fit(digits, False, opt)
    m_on, on = _fit(digits, True, opt)
    assert on.history.train_loss == off.history.train_loss  # bitwise: == on floats
    assert on.history.val_loss == off.history.val_loss
    for a, b in zip(m_on.parameters(), m_off.parameters(), strict=True):
        assert torch.equal(a, b)
    assert off.history.telemetry == {}
    names = [n for n, _ in m_on.named_parameters()]
    tags = on.history.telemetry
    for n in names:
        for kind in ("l2_norm/grad/", "l2_norm/param/", "l2_norm/update/",
                     "l2_norm_ratio/update_param/", "cosine/update_grad/"):
            assert len(tags[kind + n]) == 3 and all(v is not None for v in tags[kind + n])
    assert tags["lr/group0"] == [1e-3] * 3 and len(tags["l2_norm/grad/global"]) == 3
    assert (f"effective_lr/{names[0]}" in tags) == (opt is not ours.SGD)


def test_fit_measures_the_last_step_of_each_epoch(digits):
    """The recorded param norm of epoch e equals the norm before the epoch's last step."""
    from optimlab.engine import fit
    from optimlab.models import build_model

    model = build_model("mlp", digits.input_shape, digits.num_outputs, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = math.ceil(len(digits.train) / 64)
    seen = []
    original = opt.step

    def spying_step(*a, **k):  # records ‖p‖ of the first layer before every step
        seen.append(float(next(model.parameters()).detach().norm()))
        return original(*a, **k)

    opt.step = spying_step
    result = fit(model, opt, digits, epochs=2, seed=2, progress=False, telemetry=True)
    name = next(n for n, _ in model.named_parameters())
    recorded = result.history.telemetry[f"l2_norm/param/{name}"]
    assert len(seen) == 2 * batches
    assert recorded == pytest.approx([seen[batches - 1], seen[2 * batches - 1]], rel=1e-6)
    assert recorded[0] != pytest.approx(seen[batches - 2], rel=1e-9)


def test_telemetry_survives_checkpoint_and_resume(digits, tmp_path):
    _, whole = _fit(digits, True, epochs=4)
    from optimlab.engine import fit
    from optimlab.models import build_model

    model = build_model("mlp", digits.input_shape, digits.num_outputs, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def interrupt(epoch, _row):
        if epoch == 2:
            raise KeyboardInterrupt

    first = fit(model, opt, digits, epochs=4, seed=2, progress=False, telemetry=True,
                checkpoint_dir=tmp_path, checkpoint_every=1, on_epoch_end=interrupt)
    assert first.status == "interrupted"
    model = build_model("mlp", digits.input_shape, digits.num_outputs, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    resumed = fit(model, opt, digits, epochs=4, seed=2, progress=False, telemetry=True,
                  checkpoint_dir=tmp_path, resume=True)
    assert resumed.history.train_loss == whole.history.train_loss
    assert resumed.history.telemetry == whole.history.telemetry


@pytest.mark.parametrize("cls", [torch.optim.Adadelta, ours.Adadelta, torch.optim.Adam])
def test_the_very_first_step_is_measured(cls):
    """An epoch of one batch: the measured step is the one that creates the state."""
    model = tiny_model()
    opt = cls(model.parameters(), lr=0.5)
    telemetry = Telemetry(model, opt)
    before = [p.detach().clone() for p in model.parameters()]
    telemetry.observe(make_step(model, opt), 1)(*batch(0))
    values = telemetry.pop()
    assert values["effective_lr/0.weight"] > 0
    first = next(model.parameters())
    delta = first.detach() - before[0]
    assert values["l2_norm/update/0.weight"] == pytest.approx(float(delta.norm()), rel=1e-6)
    if cls.__name__ == "Adadelta":  # no acc_delta before the first step: zeros, as torch's
        size = STEP_SIZES["Adadelta"][1](opt.state[first], opt.param_groups[0], {})
        torch.testing.assert_close(delta, -size * first.grad, rtol=2e-5, atol=1e-7)
        assert values["effective_lr/0.weight"] == pytest.approx(float(size.mean()), rel=1e-6)

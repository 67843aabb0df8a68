"""The optimizer protocols fit honours, each against its package's documented loop:
closures (torch's LBFGS, pytorch_optimizer's SAM), running statistics updated on the first
pass only, Schedule-Free's train()/eval() (also across a resume), and the plain fast path."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from optimlab.data import load_dataset
from optimlab.engine import fit, needs_closure

BATCH = 128


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _mlp(batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, 32)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(32))
    return nn.Sequential(*layers, nn.ReLU(), nn.Linear(32, 10))


def _batches(data, epochs, seed):
    """fit's batch order: one generator, one permutation per epoch."""
    gen = torch.Generator().manual_seed(seed)
    x, y = data.train.x, data.train.y
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        yield [(x[order[i:i + BATCH]], y[order[i:i + BATCH]]) for i in range(0, len(x), BATCH)]


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_lbfgs_matches_torchs_closure_loop(digits):
    model, ref = _mlp(), _mlp()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
    ref_opt = torch.optim.LBFGS(ref.parameters(), lr=0.5, max_iter=4)
    assert needs_closure(opt)
    result = fit(model, opt, digits, epochs=2, batch_size=BATCH, seed=5, progress=False)
    losses = []
    for epoch in _batches(digits, 2, 5):
        total = []
        for x, y in epoch:
            def closure(x=x, y=y):
                ref_opt.zero_grad()
                loss = F.cross_entropy(ref(x), y)
                loss.backward()
                return loss
            total.append(float(ref_opt.step(closure).detach()))
        losses.append(sum(total) / len(total))
    assert _same(model, ref)
    assert result.history.train_loss == pytest.approx(losses, rel=1e-6)
    assert result.status == "finished"


class _SAM:
    """pytorch_optimizer's SAM marked as needing a closure (its step(closure=None) raises)."""

    @staticmethod
    def make(params):
        from pytorch_optimizer import SAM

        class MarkedSAM(SAM):
            requires_closure = True

        return MarkedSAM(params, base_optimizer=torch.optim.SGD, lr=0.1, rho=0.05)


def test_sam_matches_its_documented_loop_and_batchnorm_counts_one_pass(digits):
    model, ref = _mlp(batchnorm=True), _mlp(batchnorm=True)
    opt, ref_opt = _SAM.make(model.parameters()), _SAM.make(ref.parameters())
    assert needs_closure(opt)
    fit(model, opt, digits, epochs=2, batch_size=BATCH, seed=1, progress=False, val_every=9)
    bn = ref[2]
    batches = 0
    for epoch in _batches(digits, 2, 1):
        ref.train()
        for x, y in epoch:
            ref_opt.zero_grad()
            F.cross_entropy(ref(x), y).backward()  # first pass: running stats move
            batches += 1

            def closure(x=x, y=y):  # second pass: momentum 0 keeps the running stats
                ref_opt.zero_grad()
                bn.momentum, tracked = 0.0, bn.num_batches_tracked.clone()
                loss = F.cross_entropy(ref(x), y)
                loss.backward()
                bn.momentum = 0.1
                bn.num_batches_tracked.copy_(tracked)
                return loss
            ref_opt.step(closure)
    assert int(model[2].num_batches_tracked) == batches
    assert _same(model, ref)


def test_plain_optimizer_takes_the_fast_path(digits):
    class Counting(torch.optim.SGD):
        closures = 0

        def step(self, closure=None):
            Counting.closures += closure is not None
            return super().step(closure)

    model = _mlp()
    opt = Counting(model.parameters(), lr=0.1)
    assert not needs_closure(opt)
    fit(model, opt, digits, epochs=1, batch_size=BATCH, progress=False)
    assert Counting.closures == 0


def _schedule_free(model):
    import schedulefree

    return schedulefree.AdamWScheduleFree(model.parameters(), lr=1e-2, warmup_steps=5)


def test_schedule_free_modes_match_its_documented_loop(digits):
    model, ref = _mlp(), _mlp()
    result = fit(model, _schedule_free(model), digits, epochs=3, batch_size=BATCH, seed=2,
                 progress=False)
    ref_opt = _schedule_free(ref)
    val = []
    for epoch in _batches(digits, 3, 2):
        ref.train()
        ref_opt.train()
        for x, y in epoch:
            ref_opt.zero_grad()
            F.cross_entropy(ref(x), y).backward()
            ref_opt.step()
        ref_opt.eval()
        ref.eval()
        with torch.no_grad():
            val.append(F.cross_entropy(ref(digits.val.x), digits.val.y).item())
    assert _same(model, ref)  # fit returns the evaluation (averaged) weights
    assert result.history.val_loss == pytest.approx(val, rel=1e-6)


def test_schedule_free_resume_is_bitwise_identical(digits, tmp_path):
    def run(epochs, stop_at=None, resume=False):
        model = _mlp()

        def hook(epoch, row):
            if epoch == stop_at:
                raise KeyboardInterrupt

        result = fit(model, _schedule_free(model), digits, epochs=epochs, batch_size=BATCH,
                     seed=2, progress=False, checkpoint_dir=tmp_path if stop_at or resume
                     else None, resume=resume, on_epoch_end=hook)
        return model, result

    straight, straight_result = run(5)
    _, stopped = run(5, stop_at=3)
    assert stopped.status == "interrupted"
    resumed, result = run(5, resume=True)
    assert _same(resumed, straight)
    assert result.history.train_loss == straight_result.history.train_loss
    assert result.history.val_loss == straight_result.history.val_loss

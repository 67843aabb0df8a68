"""Issue 11 in the lab: wrapper specs (``sam(sgd):…``, ``lookahead(adam):…``) against
pytorch_optimizer's classes, Muon's hybrid built from the model, Lookahead evaluated on its
slow weights, resume bitwise identical for SAM, Lookahead and Schedule-Free, and compare/tune
end to end with the new names."""

from __future__ import annotations

import json

import pytest
import pytorch_optimizer
import torch
from torch import nn
from torch.nn import functional as F

from optimlab import cli, optim
from optimlab.data import load_dataset
from optimlab.engine import fit
from optimlab.errors import UserError
from optimlab.lab.spec import build_optimizer, check_optimizer_spec, parse_spec

BATCH = 128


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32),
                         nn.ReLU(), nn.Linear(32, 10))


def _closure(model, opt, x, y):
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return closure


# -- wrapper specs --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "name", "label"), [
    ("sam(sgd):rho=0.05,lr=0.1,momentum=0.9", "sam(sgd)",
     "sam(sgd, rho=0.05, lr=0.1, momentum=0.9)"),
    ("lookahead(adam):k=5,alpha=0.5", "lookahead(adam)", "lookahead(adam, k=5, alpha=0.5)"),
    (" sam( torch.SGD ):lr=0.1", "sam(torch.SGD)", "sam(torch.SGD, lr=0.1)"),
    ("lookahead(radam)", "lookahead(radam)", "lookahead(radam)"),
])
def test_wrapper_specs_parse_to_readable_labels(text, name, label):
    spec = parse_spec(text)
    assert (spec.name, spec.label) == (name, label)
    assert spec.wrapper == name.partition("(")[0]
    assert spec.inner is not None and spec.inner.name == name[len(spec.wrapper) + 1:-1]


def _trajectory(opt, model, batches, closure: bool):
    for x, y in batches:
        step = _closure(model, opt, x, y)
        if closure:
            step()
            opt.step(step)
        else:
            step()
            opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(("text", "reference", "closure"), [
    ("sam(sgd):rho=0.05,lr=0.1,momentum=0.9",
     lambda ps: pytorch_optimizer.SAM(ps, torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9),
     True),
    ("sam(torch.Adam):rho=0.1,adaptive=true,lr=0.01",
     lambda ps: pytorch_optimizer.SAM(ps, torch.optim.Adam, rho=0.1, adaptive=True, lr=0.01),
     True),
    ("lookahead(adam):k=3,alpha=0.6,lr=0.01",
     lambda ps: pytorch_optimizer.Lookahead(torch.optim.Adam(ps, lr=0.01), k=3, alpha=0.6),
     False),
    ("lookahead(torch.SGD):k=2,pullback_momentum='reset',lr=0.1,momentum=0.9",
     lambda ps: pytorch_optimizer.Lookahead(torch.optim.SGD(ps, lr=0.1, momentum=0.9), k=2,
                                            pullback_momentum="reset"),
     False),
])
def test_a_wrapper_spec_follows_pytorch_optimizer(digits, text, reference, closure):
    batches = [(digits.train.x[i:i + 64], digits.train.y[i:i + 64]) for i in range(0, 448, 64)]
    ours_model, ref_model = _mlp(), _mlp()
    ours = _trajectory(build_optimizer(parse_spec(text), ours_model), ours_model, batches,
                       closure)
    theirs = _trajectory(reference(list(ref_model.parameters())), ref_model, batches, closure)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours[0], _mlp().state_dict()["1.weight"])  # it did train


@pytest.mark.parametrize(("text", "fragment"), [
    ("sam(nosuch)", "unknown optimizer 'nosuch' inside sam(…); valid: adadelta"),
    ("sam(sgd):nosuch=1", "valid: rho, adaptive, use_gc, perturb_eps, lr, momentum"),
    ("lookahead(sam(sgd))", "wrappers do not nest"),
    ("sam(lookahead)", "wrappers do not nest"),
    ("wrap(sgd)", "unknown wrapper 'wrap'"),
    ("sam(sgd", "expected wrapper(inner):key=value"),
    ("sam", "write sam(INNER)"),
    ("sam(muon)", "splits a model's parameters itself"),
    ("lookahead(adamw_schedulefree)", "does not pass through a wrapper"),
    ("sam(sgd):rho=-1", "Invalid rho"),
    ("sam(sgd):adaptive=1", "adaptive must be true or false"),
    ("lookahead(adam):k=2.5", "k must be an integer"),
    ("lookahead(adam):lr=abc", "lr must be a finite number"),
    ("sam(torch.SGD):momentum='x'", "momentum must be a finite number"),
    ("muon:adamw_lr=abc", "adamw_lr must be a finite number"),
    ("muon:nosuch=1", "adamw_lr"),
])
def test_bad_wrapper_and_muon_specs_are_user_errors(text, fragment):
    with pytest.raises(UserError) as e:
        check_optimizer_spec(parse_spec(text))
    assert fragment in str(e.value), str(e.value)


# -- Muon: the hybrid in the lab, the pure optimizer in optimlab.optim -----------------------
def test_muon_in_the_lab_is_muon_on_hidden_matrices_and_adamw_on_the_rest():
    model = _mlp()
    opt = build_optimizer(parse_spec("muon:lr=0.02,adamw_lr=1e-3"), model)
    assert isinstance(opt, optim.MuonWithAdamW)
    hidden = model[3].weight
    assert opt.muon.param_groups[0]["params"] == [hidden]
    assert opt.muon.param_groups[0]["lr"] == 0.02
    assert opt.adamw.param_groups[0]["lr"] == 1e-3
    others = {id(p) for p in model.parameters() if p is not hidden}
    assert {id(p) for p in opt.adamw.param_groups[0]["params"]} == others
    assert type(optim.create("muon", [hidden])) is optim.Muon  # the library's muon stays pure


def test_muon_on_a_two_element_point_says_what_it_needs():
    """The landscape's point has no weight matrix: a user error naming the fix."""
    from optimlab.lab.landscape.run import plan_specs

    with pytest.raises(UserError, match="Muon needs hidden 2-D weight matrices.*use adamw"):
        plan_specs(["muon"])


# -- Lookahead's evaluation mode and resume --------------------------------------------------
def test_lookahead_validates_and_returns_the_slow_weights(digits):
    model = _mlp()
    opt = build_optimizer(parse_spec("lookahead(adam):k=5,lr=0.01"), model)
    result = fit(model, opt, digits, epochs=2, batch_size=BATCH, progress=False)
    steps = 2 * -(-len(digits.train) // BATCH)
    assert steps % 5 != 0  # so the fast weights are not the slow ones at the end
    params = list(model.parameters())
    assert all(torch.equal(p, opt.state[p]["slow_params"]) for p in params)
    with torch.no_grad():
        val = F.cross_entropy(model(digits.val.x), digits.val.y).item()
    assert result.history.val_loss[-1] == pytest.approx(val, rel=1e-6)
    opt.train()
    assert not all(torch.equal(p, opt.state[p]["slow_params"]) for p in params)
    assert not any("backup_params" in opt.state[p] for p in params)
    opt.train()  # idempotent both ways
    fast = [p.detach().clone() for p in params]
    opt.eval()
    opt.eval()
    opt.train()
    assert all(torch.equal(p, f) for p, f in zip(params, fast, strict=True))


@pytest.mark.parametrize("text", ["sam(sgd):rho=0.05,lr=0.1,momentum=0.9",
                                  "lookahead(adam):k=5,lr=0.01", "adamw_schedulefree:lr=0.01",
                                  "muon:lr=0.02"])
def test_resume_is_bitwise_identical(digits, tmp_path, text):
    def run(stop_at=None, resume=False):
        model = _mlp()

        def hook(epoch, row):
            if epoch == stop_at:
                raise KeyboardInterrupt

        result = fit(model, build_optimizer(parse_spec(text), model), digits, epochs=4,
                     batch_size=BATCH, seed=2, progress=False,
                     checkpoint_dir=tmp_path if stop_at or resume else None, resume=resume,
                     on_epoch_end=hook)
        return model, result

    straight, straight_result = run()
    assert run(stop_at=2)[1].status == "interrupted"
    resumed, result = run(resume=True)
    for a, b in zip(resumed.parameters(), straight.parameters(), strict=True):
        assert torch.equal(a, b)
    assert result.history.train_loss == straight_result.history.train_loss
    assert result.history.val_loss == straight_result.history.val_loss


# -- compare and tune end to end ----------------------------------------------------------
COMPARED = ["sam(sgd):rho=0.05,lr=0.1", "lookahead(adam):k=5", "muon", "adamw_schedulefree",
            "nadam", "lion", "prodigy"]


@pytest.mark.slow
def test_compare_runs_every_new_name(tmp_path, capsys):
    args = ["compare", "--dataset", "digits", "--epochs", "2", "--quiet", "--out",
            str(tmp_path / "out"), "--store", str(tmp_path / "s.sqlite")]
    for text in COMPARED:
        args += ["--optimizer", text]
    assert cli.main(args) == 0, capsys.readouterr().err
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["sam(sgd, rho=0.05, lr=0.1)", "lookahead(adam, k=5)",
                                        "muon", "adamw_schedulefree", "nadam", "lion",
                                        "prodigy"]
    assert all(r["status"] == "finished" and r["epochs_run"] == 2 for r in runs)
    curves = [tuple(r["history"]["train_loss"]) for r in runs]
    assert len(set(curves)) == len(curves)  # seven different trajectories
    assert len({r["test_loss"] for r in runs}) == len(runs)
    assert runs[0]["optimizer"] == "sam(sgd)" and runs[0]["hparams"] == {"rho": 0.05, "lr": 0.1}


@pytest.mark.slow
def test_tune_searches_a_wrapper_specs_default_space(tmp_path):
    from optimlab.lab.tune import TuneConfig, run_tune

    config = TuneConfig(optimizer=("sam(sgd):momentum=0.9",), epochs=1, trials=2, seeds=1,
                        workers=1, sampler="random", defaults=False)
    run_tune(config, out_dir=tmp_path / "t", store_path=None)
    data = json.loads((tmp_path / "t" / "results.json").read_text())
    [entry] = data["optimizers"]
    assert entry["name"] == "sam(sgd, rho=log(0.01, 0.5), momentum=0.9)"
    assert [t["state"] for t in entry["trials"]] == ["complete", "complete"]
    for trial in entry["trials"]:
        assert set(trial["params"]) == {"lr", "rho"}
        assert 1e-4 <= trial["params"]["lr"] <= 1.0 and 0.01 <= trial["params"]["rho"] <= 0.5
    assert entry["trials"][0]["value"] != entry["trials"][1]["value"]


def test_list_says_how_to_write_wrappers_and_what_muon_is(capsys):
    assert cli.main(["list", "optimizers", "--json"]) == 0
    notes = {e["name"]: e["note"] for e in json.loads(capsys.readouterr().out)["optimizers"]}
    assert "sam(INNER):key=value" in notes["sam"]
    assert "lookahead(INNER):key=value" in notes["lookahead"]
    assert notes["muon"].startswith("MuonWithAdamW in the lab (= muon_adamw")
    assert cli.main(["list", "optimizers"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "sam(sgd):rho=0.05,lr=0.1" in text and "adamw_lr=... sets AdamW's lr" in text


def test_sam_in_the_landscape_follows_pytorch_optimizers_loop():
    """run_path gives SAM its first pass (the gradient at the point) before step(closure)."""
    from optimlab.lab.landscape import FUNCTIONS, run_path

    fn = FUNCTIONS["rosenbrock"]
    ours = run_path(fn, parse_spec("sam(sgd):rho=0.05,lr=1e-3,momentum=0.9"), start=fn.start,
                    steps=30)
    p = torch.tensor(fn.start, dtype=torch.float64, requires_grad=True)
    ref = pytorch_optimizer.SAM([p], torch.optim.SGD, rho=0.05, lr=1e-3, momentum=0.9)
    path, losses = [tuple(fn.start)], []

    def closure():
        ref.zero_grad()
        value = fn(p[0], p[1])
        value.backward()
        return value

    for _ in range(30):
        losses.append(float(closure().detach()))
        ref.step(closure)
        path.append((float(p[0].detach()), float(p[1].detach())))
    assert ours.status == "finished"
    assert ours.path == path  # bitwise
    assert ours.loss[:-1] == losses  # each step's loss is f at the point, not at w + ε̂

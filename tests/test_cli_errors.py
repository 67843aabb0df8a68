"""Every user mistake: exit 2, one ``optimlab: error: …`` line, no traceback, nothing created.

One table drives the CLI (in-process through ``cli.main``, so it is quick) over bad inputs. Each
case runs in a fresh empty folder; afterwards the folder must hold exactly what the case's own
setup put there — no ``runs/``, no out folder, no store rows, no ``comparison.json``.

Cases are grouped by the part of the program that must catch them; a group is a list of
:class:`Bad`. Add a row for every new mistake a command must refuse.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from optimlab import cli


@dataclass(frozen=True)
class Bad:
    """A bad command line, what its one-line error must contain, and optional setup."""

    args: tuple[str, ...]
    fragment: str  # a piece of the error line (case-sensitive)
    setup: Callable[[Path], None] | None = None  # writes the case's input files into the folder
    id: str = ""


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder): created or changed shows."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in root.rglob("*")}


def run_bad(case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run ``case`` in ``tmp_path``; assert exit 2, one line, no traceback, nothing created."""
    if case.setup is not None:
        case.setup(tmp_path)
    before = _tree(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = cli.main(list(case.args))
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("optimlab: error: "), err
    assert "Traceback" not in err
    assert len(lines[0]) <= 300, lines[0]
    assert case.fragment in lines[0], lines[0]
    after = _tree(tmp_path)
    assert after == before, sorted(k for k in after.keys() | before.keys()
                                   if after.get(k, b"gone") != before.get(k, b"gone"))


# -- the plan: specs, values, schedulers, config (checked before anything is written) -------
def _file(name: str, text: str = "x") -> Callable[[Path], None]:
    return lambda root: (root / name).write_text(text)


def _old_out(root: Path) -> None:
    (root / "old").mkdir()
    (root / "old" / "bands.png").write_text("stale")


def _corrupt_checkpoint(root: Path) -> None:
    """A one-epoch comparison in ``old`` whose checkpoint is then garbled (for --resume)."""
    from optimlab.lab import CompareConfig, run_comparison

    run_comparison(CompareConfig(optimizer=("sgd:lr=0.1",), epochs=1), out_dir=root / "old",
                   store_path=None)
    run = root / "old" / "checkpoints" / "sgd_lr=0.1" / "seed0"
    (run / "result.json").unlink()
    (run / "checkpoint.pt").write_bytes(b"garbage")


def _c(*args: str) -> tuple[str, ...]:
    return ("compare", "--epochs", "2", *args)


PLAN_CASES: list[Bad] = [
    Bad(("compare", "--optimizer", "nosuch"), "unknown optimizer 'nosuch'", id="unknown-opt"),
    Bad(_c("--optimizer", "torch.Nope"), "torch.<Name> for torch.optim's classes",
        id="unknown-torch-opt"),
    Bad(_c("--optimizer", "sgd:lr=0.1,maximize=no"), "maximize must be true or false",
        id="bool-no"),
    Bad(_c("--optimizer", "adam:amsgrad=off"), "amsgrad must be true or false", id="bool-off"),
    *[Bad(_c("--optimizer", f"sgd:lr={v}"), "lr must be a finite number", id=f"lr-{v}")
      for v in ("abc", "nan", "inf", "1e999")],
    Bad(_c("--optimizer", "sgd:lr=" + "9" * 5000), "invalid value '999", id="lr-5000-digits"),
    Bad(_c("--optimizer", "sgd:lr=" + "9" * 4000), "lr must be a finite number",
        id="lr-4000-digits"),
    Bad(_c("--optimizer", "adam:capturable=true"), "CUDA-graph capture", id="capturable"),
    Bad(_c("--optimizer", "torch.SparseAdam"), "torch.SparseAdam is not supported",
        id="sparse-adam"),
    Bad(_c("--optimizer", "torch.Muon"), "torch.Muon", id="muon-on-biases"),  # built for real
    # issue 11: wrapper specs and Muon's hybrid
    Bad(_c("--optimizer", "sam(nosuch)"), "unknown optimizer 'nosuch' inside sam(…); valid:",
        id="sam-unknown-inner"),
    Bad(_c("--optimizer", "sam(sgd):nosuch=1"), "valid: rho, adaptive, use_gc, perturb_eps, lr",
        id="sam-unknown-key"),
    Bad(_c("--optimizer", "lookahead(sam(sgd))"), "wrappers do not nest", id="wrapper-nested"),
    Bad(_c("--optimizer", "sam:rho=0.05"), "write sam(INNER)", id="wrapper-without-inner"),
    Bad(_c("--optimizer", "lookahead(adam):k=0"), "Invalid k", id="lookahead-k-0"),
    Bad(_c("--optimizer", "muon:adamw_lr=abc"), "adamw_lr must be a finite number",
        id="muon-adamw-lr-abc"),
    Bad(_c("--model", "linear", "--optimizer", "muon"), "Muon needs hidden 2-D weight matrices",
        id="muon-without-hidden-matrix"),  # found when built over the model
    Bad(_c("--scheduler", "steplr:step_size=0"), "fails at step 1", id="steplr-0"),
    Bad(_c("--scheduler", "steplr:step_size=abc"), "step_size must be an integer",
        id="steplr-abc"),
    Bad(_c("--scheduler", "steplr:step_size=1,gamma=-1"), "learning rate -0.001",
        id="negative-lr"),
    Bad(("compare", "--scheduler", "polynomiallr:power=-1"), "fails at step 5 of 30",
        id="polynomial-power"),
    Bad(_c("--scheduler", "onecyclelr:max_lr=0.1,total_steps=1"), "fails at step 2",
        id="onecycle-short"),
    Bad(_c("--optimizer", "adadelta", "--scheduler", "cycliclr:base_lr=0.01,max_lr=0.1"),
        "momentum", id="cyclic-adadelta"),
    Bad(_c("--scheduler", "nosuch\nx"), "unknown scheduler", id="scheduler-literal-backslash-n"),
    Bad(_c("--scheduler", "steplr:step_size=1,gamma='a\nb'"), "for 'gamma'",
        id="scheduler-newline-value"),
    Bad(_c("--scheduler", "steplr:step_size=1,gamma='a\\nb'"), "gamma must be a finite number",
        id="scheduler-escaped-newline-value"),
    Bad(_c("--seed", "99999999999999999999"), "seed must be between 0 and 2**63-1",
        id="seed-huge"),
    Bad(_c("--threads", "100000"), "threads must be between 1 and", id="threads-huge"),
    Bad(_c("--patience", "0"), "patience must be >= 1", id="patience-0"),
    Bad(_c("--min-delta", "nan"), "min_delta must be a finite number", id="min-delta-nan"),
    Bad(_c("--config", "lab.toml"), "min_delta must be a finite number",
        setup=_file("lab.toml", "min_delta = nan\n"), id="toml-min-delta-nan"),
    Bad(_c("--config", "lab.toml"), "nesterov must be true or false",
        setup=_file("lab.toml", 'optimizer = ["sgd:momentum=0.9,nesterov=\'yes\'"]\n'),
        id="toml-bool"),
    Bad(("compare", "--resume", "old", "--force"), "drop --force", setup=_old_out,
        id="resume-force"),
    Bad(("compare", "--resume", "old", "--quiet"), "cannot load checkpoint",
        setup=_corrupt_checkpoint, id="resume-corrupt-checkpoint"),
    # the output folder (checked with the plan, before anything is written)
    Bad(_c("--out", "taken"), "is a file, not a folder", setup=_file("taken"), id="out-file"),
    Bad(_c("--out", "taken/sub"), "is a file, so no folder", setup=_file("taken"),
        id="out-under-file"),
    Bad(_c("--out", "/dev/null"), "is a file, not a folder", id="out-dev-null"),
    Bad(_c("--out", "/proc/optimlab-out"), "/proc", id="out-unwritable"),
    Bad(_c("--out", "old"), "already holds files; choose a new or empty folder, or add --force",
        setup=_old_out, id="out-not-empty"),
    Bad(_c("--out", "old", "--force"), "empties only a comparison's folder", setup=_old_out,
        id="force-foreign-folder"),
]

# -- files and folders: data files, out/store paths, the run store, reports -------------------
class _RunsCode:
    """Pickled, it runs a shell command when read back: a data file must never be executed."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("touch pwned",)


def _cifar_that_runs_code(root: Path) -> None:
    import pickle

    import numpy as np

    folder = root / "fake" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batch = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}
    for name in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": _RunsCode(), "labels": [0]}))


def _mnist(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        import gzip
        import struct

        import numpy as np

        raw = root / "d" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for part, n in (("train", 3), ("t10k", 2)):
            for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
                header = bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
                data = header + bytes(int(np.prod(shape)))
                (raw / f"{part}-{kind}-ubyte.gz").write_bytes(gzip.compress(data))
        damage(raw)

    return setup


def _truncated_gz(raw: Path) -> None:
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])


def _garbage_idx(raw: Path) -> None:
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")


def _store(root: Path) -> None:
    """A run store with run 1 (digits, classification) and run 2 (line, regression)."""
    from optimlab.lab.store import RunStore

    with RunStore(root / "s.sqlite") as store:
        exp = store.add_experiment({"device": "cpu"}, None, {"torch": "x"})
        for dataset, task in (("digits", "classification"), ("line", "regression")):
            rid = store.start_run(exp, name=f"sgd-{dataset}", optimizer="sgd", hparams={},
                                  seed=0, config={"dataset": dataset})
            store.log_epoch(rid, 1, {"train_loss": 1.0, "lr": 0.1})
            store.finish_run(rid, "finished", wall_seconds=1.0, result={"task": task})


def _damaged_store(root: Path) -> None:
    import sqlite3

    _store(root)
    db = sqlite3.connect(root / "s.sqlite")
    db.execute("UPDATE runs SET result = '[1,2]' WHERE id = 1")
    db.commit()
    db.close()


def _unrelated_database(root: Path) -> None:
    import sqlite3

    db = sqlite3.connect(root / "other.sqlite")
    db.execute("CREATE TABLE users (name TEXT)")
    db.commit()
    db.close()


def _s(*args: str) -> tuple[str, ...]:
    return (*args, "--store", "s.sqlite")


IO_CASES: list[Bad] = [
    Bad(("runs", "list", "--store", "missing.sqlite"), "missing.sqlite", id="missing-store"),
    # data files: read, never executed; a bad file names itself and the reason
    Bad(_c("--dataset", "cifar10", "--model", "lenet", "--data-dir", "fake"),
        "data_batch_1 is not a CIFAR-10 batch file: it asks to load posix.system",
        setup=_cifar_that_runs_code, id="cifar10-pickle-runs-code"),
    Bad(_c("--dataset", "mnist", "--data-dir", "d"), "train-images-idx3-ubyte.gz is not an "
        "MNIST file: the gzip data is truncated", setup=_mnist(_truncated_gz),
        id="mnist-truncated-gz"),
    Bad(_c("--dataset", "mnist", "--data-dir", "d"), "t10k-labels-idx1-ubyte is not an MNIST "
        "file: not an IDX file", setup=_mnist(_garbage_idx), id="mnist-garbage"),
    # the run store: read-only commands write nothing, not even to someone else's database
    Bad(("runs", "list", "--store", "other.sqlite"), "other.sqlite is not an optimlab run store "
        "(its tables: users", setup=_unrelated_database, id="store-unrelated-db"),
    Bad(("runs", "list", "--store", "/tmp"), "run store /tmp is a folder", id="store-folder"),
    Bad(("runs", "list", "--store", "notes.txt"), "file is not a database",
        setup=_file("notes.txt", "dear diary " * 100), id="store-not-sqlite"),
    Bad(("runs", "list", "--store", "empty.sqlite"), "its tables: none",
        setup=_file("empty.sqlite", ""), id="store-empty-file"),
    Bad(_s("runs", "show", "99999999999999999999999"), "no run with id 99999999999999999999999",
        setup=_store, id="runs-show-huge-id"),
    Bad(_s("runs", "show", "3"), "no run with id 3", setup=_store, id="runs-show-missing"),
    Bad(_s("runs", "show", "1"), "run 1's result in s.sqlite is damaged: expected a JSON object",
        setup=_damaged_store, id="result-json-list"),
    # reports
    Bad(_s("report", "1", "2", "--out", "rep"), "run 1 is classification (cross-entropy, nats) "
        "and run 2 is regression (mean squared error)", setup=_store, id="report-mixed-tasks"),
    Bad(_s("report", "1", "99999999999999999999999", "--out", "rep"), "no run with id",
        setup=_store, id="report-huge-id"),
    Bad(_s("report", "1", "--out", "taken"), "--out taken is not a folder",
        setup=lambda root: (_store(root), _file("taken")(root)), id="report-out-file"),
    Bad(_s("report", "1", "--out", "taken/sub"), "taken is a file, so no folder",
        setup=lambda root: (_store(root), _file("taken")(root)), id="report-out-under-file"),
    Bad(_s("report", "1", "--out", "/dev/null"), "--out /dev/null is not a folder",
        setup=_store, id="report-out-dev-null"),
    Bad(_s("report", "1", "--out", "/proc/optimlab-report"), "/proc", setup=_store,
        id="report-out-unwritable"),
    Bad(("report", "1", "--out", "rep", "--store", "other.sqlite"), "not an optimlab run store",
        setup=_unrelated_database, id="report-unrelated-db"),
]

# -- commands added by later work append their own groups here (tune, landscape, …) ----------
OTHER_CASES: list[Bad] = []

# landscape: function, start, steps, noise, optimizer specs and --out, all before any run
OTHER_CASES += [
    Bad(("landscape", "--function", "sphere"), "unknown function 'sphere'; valid: rosenbrock",
        id="landscape-function"),
    Bad(("landscape", "--start", "3,0"), "outside rosenbrock's domain", id="landscape-start"),
    Bad(("landscape", "--function", "beale", "--start", "0,nan"), "must be finite",
        id="landscape-start-nan"),
    Bad(("landscape", "--start", "1"), "expected X,Y", id="landscape-start-format"),
    Bad(("landscape", "--steps", "0"), "steps must be an integer in 1", id="landscape-steps"),
    Bad(("landscape", "--noise", "-0.5"), "noise must be a finite number >= 0",
        id="landscape-noise"),
    Bad(("landscape", "--noise", "inf"), "noise must be a finite number", id="landscape-noise-inf"),
    Bad(("landscape", "--noise", "x"), "invalid float value", id="landscape-noise-word"),
    Bad(("landscape", "--seed", "-1"), "seed must be an integer in 0", id="landscape-seed"),
    Bad(("landscape", "--seed", str(2**64)), "seed must be an integer in 0",
        id="landscape-seed-huge"),
    Bad(("landscape", "--optimizer", "adam:lr=-1"), "Invalid learning rate",
        id="landscape-bad-lr"),
    Bad(("landscape", "--optimizer", "nosuch"), "unknown optimizer 'nosuch'",
        id="landscape-optimizer"),
    Bad(("landscape", "--out", "taken"), "exists and is not a folder",
        setup=lambda root: (root / "taken").write_text("x"), id="landscape-out-file"),
    Bad(("landscape", "--out", "taken/sub"), "taken exists and is not a folder",
        setup=lambda root: (root / "taken").write_text("x"), id="landscape-out-under-file"),
    Bad(("landscape", "--out", "/proc/optimlab-landscape"), "cannot create the folder",
        id="landscape-out-proc"),
    Bad(("compare", "--tensorboard", "taken/tb", "--epochs", "1"),
        "taken exists and is not a folder",
        setup=lambda root: (root / "taken").write_text("x"), id="compare-tensorboard-file"),
    Bad(("compare", "--tensorboard", "/proc/optimlab-tb", "--epochs", "1"),
        "cannot create folders in /proc", id="compare-tensorboard-proc"),
]

# schedule and lr-find: recipes, lengths, ranges and --out, before anything is drawn or trained
OTHER_CASES += [
    Bad(("schedule", "warmup_sine:warmup=2", "--epochs", "5"),
        "unknown scheduler 'warmup_sine'; valid: recipes", id="schedule-unknown-recipe"),
    Bad(("schedule", "warmup_cosine:warmup=5", "--epochs", "5", "--out", "s.png"),
        "warmup=5 (5 epochs) does not fit the run of 5 epochs", id="schedule-warmup-too-long"),
    Bad(("schedule", "wsd:warmup=40", "--epochs", "3", "--steps-per-epoch", "10"),
        "(40 steps) does not fit the run of 30 steps", id="schedule-warmup-steps"),
    Bad(("schedule", "warmup_cosine:warmup=1,min_lr=0.5", "--epochs", "5", "--lr", "0.1",
         "--out", "s.png"), "min_lr=0.5 is above the optimizer's lr=0.1", id="schedule-min-lr"),
    Bad(("schedule", "steplr:step_size=2 then cosine", "--epochs", "5"),
        "needs a written length", id="schedule-chain-length"),
    Bad(("schedule", "plateau", "--epochs", "5"), "no curve to preview", id="schedule-plateau"),
    Bad(("schedule", "cosine", "--epochs", "0"), "--epochs must be an integer >= 1",
        id="schedule-epochs"),
    Bad(("schedule", "cosine", "--epochs", "5", "--out", "s.svg"), "expected a .png",
        id="schedule-out"),
    Bad(("lr-find", "--min-lr", "1", "--max-lr", "0.1", "--out", "d"),
        "--min-lr must be below --max-lr", id="lr-find-range"),
    Bad(("lr-find", "--min-lr", "0.1", "--max-lr", "0.1"), "--min-lr must be below --max-lr",
        id="lr-find-equal"),
    Bad(("lr-find", "--steps", "0"), "--steps must be an integer >= 2", id="lr-find-steps"),
    Bad(("lr-find", "--optimizer", "nosuch"), "unknown optimizer 'nosuch'",
        id="lr-find-optimizer"),
    Bad(("lr-find", "--batch-size", "0"), "--batch-size must be an integer >= 1",
        id="lr-find-batch"),
    Bad(("lr-find", "--out", "taken"), "exists and is not a folder",
        setup=lambda root: (root / "taken").write_text("x"), id="lr-find-out-file"),
    Bad(("compare", "--scheduler", "warmup_cosine:warmup=40", "--schedule-every", "step",
         "--epochs", "2"), "(40 steps) does not fit the run of 34 steps",
        id="compare-warmup-steps"),
    Bad(("compare", "--schedule-every", "batch"), "invalid choice: 'batch'",
        id="compare-schedule-every"),
    Bad(("compare", "--optimizer", "adam:lr=find", "--scheduler", "warmup_cosine"),
        "warmup_cosine needs warmup=N", id="compare-lr-find-checks-first"),
    Bad(("compare", "--optimizer", "adam:lr=find,betas=2"), "betas", id="compare-lr-find-spec"),
]

# explain: an unknown optimizer name, with the valid ones
OTHER_CASES += [
    Bad(("explain", "nosuch"), "unknown optimizer 'nosuch'; valid: adadelta, adagrad, adam",
        id="explain-unknown"),
    Bad(("explain", "adam", "extra"), "unrecognized arguments: extra", id="explain-two-names"),
]

# tune: distributions, budgets, grids, targets, Ray addresses and --resume, before any trial
OTHER_CASES += [
    Bad(("tune", "--optimizer", "sgd:lr=log(0,1)"), "log(a,b) needs 0 < a < b",
        id="tune-log-zero"),
    Bad(("tune", "--optimizer", "sgd:lr=log(1,0.1)"), "log(a,b) needs 0 < a < b",
        id="tune-log-reversed"),
    Bad(("tune", "--optimizer", "sgd:momentum=[]"), "empty choice []", id="tune-empty-choice"),
    Bad(("tune", "--optimizer", "sgd:lr=uniform(1)"), "takes two bounds",
        id="tune-uniform-one-bound"),
    Bad(("tune", "--optimizer", "sgd:lr=log(1e-3,1),foo=uniform(0,1)"), "'foo'",
        id="tune-unknown-hyperparameter"),
    Bad(("tune", "--optimizer", "sgd:lr=exp(1,2)"), "unknown distribution 'exp'",
        id="tune-unknown-distribution"),
    Bad(("tune", "--optimizer", "sgd:lr=0.1"), "nothing to search", id="tune-nothing"),
    Bad(("tune", "--optimizer", "sam(sgd):rho=0.05,lr=0.1"), "nothing to search",
        id="tune-wrapper-nothing"),
    Bad(("tune", "--optimizer", "lookahead(nosuch)"), "inside lookahead(…)",
        id="tune-wrapper-unknown-inner"),
    Bad(("tune", "--trials", "0"), "trials must be >= 1", id="tune-trials-zero"),
    Bad(("tune", "--sampler", "grid", "--trials", "2", "--optimizer",
         "sgd:lr=[0.1,0.01,0.001]"), "has 3 points (3 lr) but --trials is 2",
        id="tune-grid-too-large"),
    Bad(("tune", "--target", "val_accuracy=95"), "accuracy target is a fraction",
        id="tune-target-range"),
    Bad(("tune", "--target", "speed=1"), "expected METRIC=VALUE", id="tune-target-metric"),
    Bad(("tune", "--backend", "ray", "--ray-address", "127.0.0.1:1"),
        "no Ray cluster reachable", id="tune-ray-unreachable"),
    Bad(("tune", "--ray-address", "127.0.0.1:6379"), "--ray-address needs --backend ray",
        id="tune-ray-address-local"),
    Bad(("tune", "--dataset", "line", "--metric", "val_accuracy", "--optimizer", "sgd"),
        "regression dataset: it has no val_accuracy", id="tune-regression-accuracy"),
    Bad(("tune", "--resume", "nowhere"), "no tune.json there", id="tune-resume-missing"),
    Bad(("tune", "--resume", "nowhere", "--epochs", "3"), "drop --epochs",
        id="tune-resume-with-config"),
    Bad(("tune", "--out", "done", "--trials", "1"), "already holds a tune",
        setup=lambda root: ((root / "done").mkdir(), (root / "done" / "tune.json")
                            .write_text("{}")), id="tune-out-taken"),
    # tune's schedule, telemetry, lr=find and --force flags (issues 12 and 13)
    Bad(("tune", "--optimizer", "adam", "--scheduler", "nosuch"), "unknown scheduler 'nosuch'",
        id="tune-scheduler-unknown"),
    Bad(("tune", "--schedule-every", "hour"), "invalid choice: 'hour'",
        id="tune-schedule-every"),
    Bad(("tune", "--optimizer", "adam:lr=log(1e-5,1e-1)", "--scheduler",
         "warmup_cosine:warmup=1,min_lr=1e-3"), "at lr=1e-05: warmup_cosine: min_lr=0.001",
        id="tune-scheduler-min-lr-corner"),
    Bad(("tune", "--optimizer", "adam", "--tensorboard", "taken/tb"),
        "taken exists and is not a folder",
        setup=lambda root: (root / "taken").write_text("x"), id="tune-tensorboard-file"),
    Bad(("tune", "--optimizer", "adam", "--out", "old"),
        "already holds files; choose a new or empty folder, or add --force",
        setup=_old_out, id="tune-out-not-empty"),
    Bad(("tune", "--optimizer", "adam", "--out", "old", "--force"),
        "empties only a tune's folder", setup=_old_out, id="tune-force-foreign-folder"),
    Bad(("tune", "--resume", "nowhere", "--force"), "drop --force", id="tune-resume-force"),
    Bad(("tune", "--optimizer", "adam:lr=find,foo=1"), "'foo'", id="tune-lr-find-bad-spec"),
]

ALL_CASES = PLAN_CASES + IO_CASES + OTHER_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id or " ".join(c.args) for c in ALL_CASES])
def test_user_mistake_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    run_bad(case, tmp_path, capsys)

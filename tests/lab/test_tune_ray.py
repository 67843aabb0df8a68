"""--backend ray against a real Ray cluster that this module starts on 127.0.0.1.

The head runs as ``ray start --head --block`` in its own process group, which the fixture
ends (and only it) in teardown. Ray runs offline: no dashboard, no usage stats.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from optimlab.errors import UserError
from optimlab.lab.tune import TuneConfig, run_tune

pytestmark = pytest.mark.slow
RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``HOST:PORT`` of a two-CPU Ray head started for these tests."""
    pytest.importorskip("ray")
    port = free_port()
    # no token auth: a local Ray started earlier may have left ~/.ray/auth_token, which
    # `ray start` would turn on while a driver given an explicit address sends no token
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
           "RAY_AUTH_MODE": "disabled"}
    log = (tmp_path_factory.mktemp("ray") / "head.log").open("w")
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
         "--object-store-memory=200000000", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert head.poll() is None, Path(log.name).read_text()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the Ray head did not come up in 120 s")
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head's group: what this fixture started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()


def trials_of(out: Path) -> list[Any]:
    data = json.loads((out / "results.json").read_text())
    return [[{k: t[k] for k in ("number", "params", "state", "value", "epochs")}
             for t in o["trials"]] for o in data["optimizers"]] + [
        [o["reruns"]["test_accuracy"] for o in data["optimizers"]]]


@pytest.mark.parametrize("sampler", ["random", "qmc", "grid"])
def test_ray_gives_the_same_trials_as_local_workers(tmp_path, ray_cluster, sampler):
    cfg: dict[str, Any] = {"optimizer": ("sgd:lr=log(1e-3,1),momentum=0.9", "adam"),
                           "epochs": 2, "trials": 4, "seeds": 1, "sampler": sampler,
                           "defaults": False}
    local = run_tune(TuneConfig(**cfg, workers=1), out_dir=tmp_path / "local", store_path=None)
    on_ray = run_tune(TuneConfig(**cfg, workers=2, backend="ray", ray_address=ray_cluster),
                  out_dir=tmp_path / "ray", store_path=tmp_path / "s.sqlite")
    assert trials_of(on_ray.out_dir) == trials_of(local.out_dir)
    results = json.loads((on_ray.out_dir / "results.json").read_text())
    assert results["execution"]["backend"] == "ray"
    assert results["execution"]["ray_address"] == ray_cluster


def test_an_unreachable_ray_address_is_a_user_error_and_writes_nothing(tmp_path):
    cfg = TuneConfig(optimizer=("adam",), trials=1, backend="ray",
                     ray_address=f"127.0.0.1:{free_port()}")
    with pytest.raises(UserError, match="no Ray cluster reachable"):
        run_tune(cfg, out_dir=tmp_path / "o", store_path=tmp_path / "s.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_a_local_ray_started_for_the_command_gives_the_same_trials(tmp_path):
    pytest.importorskip("ray")
    cfg: dict[str, Any] = {"optimizer": ("adam",), "epochs": 2, "trials": 3, "seeds": 1,
                           "sampler": "random", "defaults": False}
    local = run_tune(TuneConfig(**cfg, workers=1), out_dir=tmp_path / "local", store_path=None)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    on_ray = run_tune(TuneConfig(**cfg, workers=2, backend="ray"), out_dir=tmp_path / "ray",
                  store_path=None)
    assert trials_of(on_ray.out_dir) == trials_of(local.out_dir)
    import ray

    assert not ray.is_initialized()  # the tune shut down the Ray it started

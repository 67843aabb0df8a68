"""Where tasks run: in the driver, in local worker processes, or as Ray remote tasks.

The driver (``runner.py``) is the same for every backend: it submits at most ``workers`` tasks,
waits for any one to finish, records it and submits the next. A backend only moves a
:class:`~optimlab.lab.tune.trial.Task` to :func:`~optimlab.lab.tune.trial.run_task` and its
record back. Ray is imported only by :class:`RayBackend`.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from optimlab.errors import UserError
from optimlab.lab.tune.trial import Task, run_task


class Backend(Protocol):
    """Submit tasks, wait for the first to finish; ``close`` frees the workers."""

    workers: int

    def submit(self, task: Task) -> Any: ...

    def wait_one(self, handles: list[Any]) -> tuple[Any, dict[str, Any]]: ...

    def close(self, wait: bool = True) -> None: ...


#: what a worker needs, imported once in the fork server
WORKER_MODULES = ("torch", "optimlab.data", "optimlab.models", "optimlab.engine",
                  "optimlab.lab.spec", "optimlab.lab.tune.trial")


def _start_worker(driver_pid: int) -> None:
    """In a worker: leave Ctrl-C to the driver, and exit when the driver is gone.

    A SIGKILLed driver cannot shut its pool down, and a worker waiting for its next task
    would wait forever; a daemon thread checks every second that the driver still exists.
    """
    import os
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(driver_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="driver-watch", daemon=True).start()


class LocalBackend:
    """``workers`` processes (spawned, one pool for the whole tune); 1 worker runs in-process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            import multiprocessing

            # forkserver, not fork: the driver has torch (and its thread pools) running. The
            # server imports torch and the training code once; every worker (of this and of
            # later pools in this process) is forked from it instead of importing them again.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(WORKER_MODULES))
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                             initializer=_start_worker,
                                             initargs=(os.getpid(),))

    def submit(self, task: Task) -> Future[dict[str, Any]]:
        if self._pool is not None:
            return self._pool.submit(run_task, task)
        done: Future[dict[str, Any]] = Future()
        done.set_result(run_task(task))
        return done

    def wait_one(self, handles: list[Any]) -> tuple[Any, dict[str, Any]]:
        finished, _ = wait(handles, return_when=FIRST_COMPLETED)
        first = next(h for h in handles if h in finished)  # the oldest of the finished
        return first, first.result()

    def close(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)


def check_ray_address(address: str) -> None:
    """UserError unless something listens at ``host:port`` (checked before anything is written).

    ``ray.init`` on a dead address retries for a long time; a plain TCP connect says at once.
    """
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--ray-address {address!r}: expected HOST:PORT of a Ray head, "
                        "e.g. 127.0.0.1:6379 (as printed by `ray start --head`)")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as e:
        raise UserError(f"--ray-address {address!r}: no Ray cluster reachable there "
                        f"({e.strerror or e}); start one with `ray start --head` or drop "
                        "--ray-address to start a local one") from None


class RayBackend:
    """Tasks as Ray remote tasks (one CPU each): a local Ray, or the cluster at ``address``."""

    def __init__(self, workers: int, address: str | None, threads: int) -> None:
        import ray

        self.workers = workers
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address is None:  # "local": a new Ray for this command, never a leftover one
                kwargs["num_cpus"] = workers
            ray.init(address=address or "local", **kwargs)
        self._run = ray.remote(num_cpus=1)(run_task)

    def submit(self, task: Task) -> Any:
        return self._run.remote(task)

    def wait_one(self, handles: list[Any]) -> tuple[Any, dict[str, Any]]:
        ready, _ = self._ray.wait(handles, num_returns=1)
        return ready[0], self._ray.get(ready[0])

    def close(self, wait: bool = True) -> None:
        if self._started:
            self._ray.shutdown()


def make_backend(kind: str, workers: int, address: str | None, threads: int) -> Backend:
    if kind == "ray":
        return RayBackend(workers, address, threads)
    return LocalBackend(workers)

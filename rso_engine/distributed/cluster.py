"""Where a study's tasks run: an embedded Dask ``LocalCluster`` (the default) or an existing cluster.

:func:`open_client` is a context manager yielding a ``distributed.Client``:

- no scheduler given: a ``LocalCluster`` started for the command and stopped after it, with one worker
  process per core (``workers`` to choose; one thread each, and ``RSO_THREADS=1`` in each so N runs do
  not fight over N cores), or a single in-process worker thread on a one-core machine or with
  ``workers=1``;
- ``scheduler="tcp://host:8786"``: a client of a cluster started elsewhere (``dask scheduler`` and
  ``dask worker tcp://host:8786``, or dask-jobqueue's ``SLURMCluster``); it is left running afterwards.

An unreachable scheduler is a :class:`ClusterError` naming the address and what to do. Everything that
runs work on a cluster (a study's runs, a loss surface's grid chunks, and later the chunks of one layer
for layer-parallel RSO) takes the client this yields.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: seconds to wait for an existing scheduler to answer
CONNECT_TIMEOUT = 10


class ClusterError(RuntimeError):
    """The cluster cannot be started or reached; the message says where and what to do."""


@dataclass(frozen=True)
class ClusterOptions:
    """How to get workers: ``scheduler`` (an address) wins; else a local cluster of ``workers`` (None:
    one per core). ``quiet`` silences Dask's own log lines below errors (a killed worker is reported by
    the caller instead)."""

    workers: int | None = None
    scheduler: str | None = None
    quiet: bool = True

    def describe(self) -> str:
        """In words, for a command's header."""
        if self.scheduler:
            return f"Dask cluster at {self.scheduler}"
        n = local_workers(self.workers)
        if n == 1:
            return "1 Dask worker in this process"
        return f"local Dask cluster of {n} worker processes"


def local_workers(requested: int | None = None) -> int:
    """The local cluster's size: ``requested``, or one worker per core."""
    if requested is not None:
        if requested < 1:
            raise ClusterError(f"a local cluster needs at least 1 worker (got {requested})")
        return int(requested)
    return max(1, os.cpu_count() or 1)


def _quiet() -> None:
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker",
                 "distributed.core", "distributed.comm", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def open_client(options: ClusterOptions | None = None) -> Iterator:
    """A ``distributed.Client`` for ``options`` (see the module docstring); closed (and a local cluster
    stopped) when the ``with`` block ends, also on Ctrl-C or an error."""
    options = options or ClusterOptions()
    if options.quiet:
        _quiet()
    from distributed import Client, LocalCluster  # noqa: PLC0415

    if options.scheduler:
        address = options.scheduler.strip()
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} ({exc.__class__.__name__}: {exc}); start one with "
                f"`dask scheduler` and workers with `dask worker {address} --nthreads 1`, check the address and "
                "port, or leave out --scheduler to run on this machine"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    n = local_workers(options.workers)
    processes = n > 1
    kwargs = dict(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=":0")
    if processes:
        kwargs["env"] = {"RSO_THREADS": "1"}
    if options.quiet:
        kwargs["silence_logs"] = logging.CRITICAL  # a run's error and a lost worker are reported by the study
    try:
        cluster = LocalCluster(**kwargs)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster of {n} workers ({exc}); try --workers 1") from exc
    try:
        client = Client(cluster)
        try:
            if processes:
                client.register_plugin(_ctrl_c_is_the_clients(), name="rso-ctrl-c-is-the-clients")
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _ctrl_c_is_the_clients():
    """A worker plugin that makes a local worker process ignore SIGINT: Ctrl-C in the terminal reaches every
    process of the command, and it is the client that stops the study (its runs stop at an exact state and
    save their checkpoint); a worker that died of it would print a traceback and lose the run's last cycle."""
    import signal  # noqa: PLC0415

    from distributed.diagnostics.plugin import WorkerPlugin  # noqa: PLC0415

    class IgnoreCtrlC(WorkerPlugin):
        def setup(self, worker) -> None:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            except ValueError:  # not the process's main thread (an in-process worker): the client's own
                pass

    return IgnoreCtrlC()


def worker_count(client) -> int:
    """How many workers the client's cluster has now."""
    return len(client.scheduler_info().get("workers", {}))

"""Running rso's work on a Dask cluster: an embedded ``LocalCluster`` by default, or an existing one.

- :mod:`.cluster`: :func:`open_client` (embedded local cluster or ``--scheduler ADDRESS``), ClusterOptions;
- :mod:`.records`: :class:`RunRecord`, a finished run as small plain data (what a task returns);
- :mod:`.tasks`: :func:`train_run`, the task that trains one run on a worker (data loaded by the worker,
  progress as worker events, checkpoints, cancellation);
- :mod:`.grid`: :func:`map_chunks`, independent chunks of work (a loss surface's grid points) as tasks.

The study loop that submits runs, writes each as it finishes and skips finished ones is
:mod:`rso_engine.report.scheduling`. Dask itself is imported only when a cluster is used.
"""

from .cluster import ClusterError, ClusterOptions, local_workers, open_client, worker_count
from .grid import map_chunks
from .records import RunRecord, run_key
from .tasks import PROGRESS_TOPIC, RunCancelled, RunSpec, train_run, worker_dataset

__all__ = [
    "PROGRESS_TOPIC",
    "ClusterError",
    "ClusterOptions",
    "RunCancelled",
    "RunRecord",
    "RunSpec",
    "local_workers",
    "map_chunks",
    "open_client",
    "run_key",
    "train_run",
    "worker_count",
    "worker_dataset",
]

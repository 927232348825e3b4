"""Layer-parallel RSO over a Dask cluster: a layer's weights scored in chunks on the workers.

In a layer-parallel update every weight of a layer is scored against the layer's starting state, so the
weights of a chunk can be scored anywhere. :class:`ClusterScorer` takes the place of the trainer's
:class:`~rso_engine.evaluators.state_scorer.StateScorer`: each call to :meth:`ClusterScorer.score` (one
chunk of the trainer's sweep, with its Δs and batches already drawn by the trainer) is split into one
piece per worker, each piece scored by :func:`score_piece` on a worker, and the results put back in order.

A worker holds the data itself (loaded once per process from the dataset's name, as a study's runs do)
and a trainer of the same config, whose parameters it sets from the ones sent with the piece: the model
is small (OneConv 31 KB, the paper net 48 KB) and is sent with every piece, its caches are kept while
the parameters are unchanged (the whole of a layer's sweep). The choices are merged by the trainer on
the client when the layer ends, as in one process; since a weight's numbers never depend on the chunk it
is scored in (see :mod:`~rso_engine.evaluators.state_scorer`), the workers run the client's backend and
every process runs BLAS on :data:`~rso_engine.distributed.tasks.BLAS_THREADS` thread, the run's numbers
equal the same run in one process — on workers of the same kind of machine (the same BLAS kernels: float32
products of an AVX2 and an AVX-512 build may differ in their last bits). Workers must run one thread each
(``--nthreads 1``): a worker's pieces share one scorer.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..config import RunConfig
from ..evaluators.base import SweepResult
from ..evaluators.state_scorer import StateScorer

#: weights handed to the cluster per trainer chunk, per worker (a piece should be worth its round trip)
WEIGHTS_PER_WORKER = 512
#: seconds of the trainer's chunking clock per chunk (a chunk is a round trip to every worker)
CHUNK_SECONDS = 1.0


@functools.lru_cache(maxsize=2)
def _worker_trainer(config_json: str, backend: str | None):
    """A trainer of ``config_json`` on this process (its data loaded once), whose scorer scores the pieces."""
    from ..backend import get_backend  # noqa: PLC0415
    from ..training import RSOTrainer  # noqa: PLC0415
    from .tasks import worker_dataset  # noqa: PLC0415

    cfg = RunConfig.from_json(config_json)
    # the reference evaluator: the trainer's own evaluator is never used here (and may not run on this worker)
    return RSOTrainer(cfg, worker_dataset(cfg.dataset, cfg.data_dir), get_backend(backend), evaluator="reference")


def score_piece(config_json: str, backend: str | None, params: dict[str, np.ndarray], group: str, param: str,
                flat: np.ndarray, deltas: np.ndarray, batches: np.ndarray, stay_factor: float) -> tuple:
    """Score weights ``flat`` of ``param`` against the state ``params`` on this worker; the arrays of a
    :class:`~rso_engine.evaluators.base.SweepResult`."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from .tasks import BLAS_THREADS  # noqa: PLC0415

    trainer = _worker_trainer(config_json, backend)
    model, scorer = trainer.model, trainer.scorer
    if any(not np.array_equal(to_numpy(model.params[p]), v) for p, v in params.items()):
        model.set_params(params)  # the scorer notices the new values and drops what they invalidate
    scorer.begin_group(model.groups[[g.name for g in model.groups].index(group)], ())
    with threadpool_limits(BLAS_THREADS, user_api="blas"):
        res = scorer.score(param, flat, deltas, batches, stay_factor)
    return res.losses, res.choices, res.old, res.new


class ClusterScorer(StateScorer):
    """A :class:`StateScorer` whose :meth:`score` runs on the workers of a ``distributed.Client``."""

    name = "cluster-scorer"
    description = "scores a layer's weights against its starting state on the workers of a Dask cluster"

    def __init__(self, model, x_train, y_train, client: Any, config: RunConfig, backend: str | None = None):
        super().__init__(model, x_train, y_train)
        self.client = client
        self._config_json = config.to_json()
        self._backend = backend
        self._group = ""
        self._sent: tuple[bytes, Any] | None = None  # (digest of the weights, their scattered future)

    def begin_group(self, group, params) -> None:
        super().begin_group(group, params)
        self._group = group.name

    def workers(self) -> int:
        """How many workers the cluster has now (at least 1)."""
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def score(self, param, flat, deltas, batches, stay_factor) -> SweepResult:
        """Split the chunk into one piece per worker, score the pieces there, return them in order."""
        K = len(flat)
        n = min(self.workers(), K)
        bounds = np.linspace(0, K, n + 1).astype(int)
        params = self.model.params_numpy()
        state = self._state(params) if n > 1 else params
        futures = []
        for s, e in zip(bounds[:-1], bounds[1:]):
            piece = batches if len(batches) == 1 else batches[s:e]
            futures.append(self.client.submit(score_piece, self._config_json, self._backend, state, self._group,
                                              param, flat[s:e], deltas[s:e], piece, stay_factor, pure=False))
        parts = self.client.gather(futures)
        return SweepResult(*(np.concatenate([p[i] for p in parts]) for i in range(4)))

    def _state(self, params: dict[str, np.ndarray]):
        """The weights as a future on every worker, scattered once per state (a layer's whole sweep)."""
        digest = hashlib.blake2b(b"".join(np.ascontiguousarray(v).tobytes() for v in params.values())).digest()
        if self._sent is None or self._sent[0] != digest:
            self._sent = (digest, self.client.scatter([params], broadcast=True, hash=False)[0])
        return self._sent[1]


def use_cluster(trainer, client, backend: str | None = None) -> None:
    """Make a layer-parallel ``trainer`` score its layers on ``client``'s workers (and hand them chunks worth a
    round trip), on ``backend`` (default: the trainer's own, so the numbers are those of one process: see the
    module docstring)."""
    cfg = trainer.config
    if cfg.update != "layer-parallel":
        raise ValueError(f"only a layer-parallel update is scored on a cluster (this run's update is {cfg.update!r});"
                         " add --update layer-parallel, or leave out --scheduler/--workers")
    backend = backend or trainer.backend.name
    scorer = ClusterScorer(trainer.model, trainer.x_train, trainer.y_train, client, cfg, backend)
    if cfg.batch_mode == "authors":
        scorer.set_frozen_prefix(True)
    trainer.scorer = scorer
    n = scorer.workers()
    trainer.set_chunking(WEIGHTS_PER_WORKER * n, CHUNK_SECONDS)

"""Ray implementation of `Executor`: stateless work as Ray tasks, stateful work on a pool of Ray actors.

With an ``address`` it joins that cluster and leaves it running; without one it starts a private single-node
cluster on this machine with ``workers`` CPUs (Ray binds it to the node's own address even when asked for
127.0.0.1) and shuts it down on `close`. Each task or actor reserves ``cpus_per_worker`` CPUs
(and ``gpus_per_worker`` GPUs) and sets torch to that many threads, so ``workers`` x ``cpus_per_worker`` is
exactly the cores in use. A task whose worker process dies is retried up to ``max_retries`` times by Ray.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import ray
from ray.util import ActorPool

from ops.compute.config import ComputeConfig

Item = TypeVar("Item")
Result = TypeVar("Result")
State = TypeVar("State")


def _set_threads(cpus: float) -> None:
    import torch  # only workers that run torch code pay for it

    torch.set_num_threads(max(1, math.floor(cpus)))


def _run_task(fn: Callable[[Any], Any], item: Any, cpus: float) -> Any:
    _set_threads(cpus)
    return fn(item)


class _StatefulWorker:
    """One actor: builds its state once, then answers `call` for as many items as the pool sends it."""

    def __init__(self, make: Callable[[], Any], cpus: float) -> None:
        _set_threads(cpus)
        self.state = make()

    def call(self, call: Callable[[Any, Any], Any], item: Any) -> Any:
        return call(self.state, item)


class RayExecutor:
    def __init__(self, config: ComputeConfig) -> None:
        self.config = config
        self.workers = config.workers
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            if config.address:
                ray.init(address=config.address, log_to_driver=False)
            else:
                ray.init(
                    address="local",
                    num_cpus=max(1, math.ceil(config.workers * config.cpus_per_worker)),
                    include_dashboard=False,
                    log_to_driver=False,
                )
        resources = {"num_cpus": config.cpus_per_worker, "num_gpus": config.gpus_per_worker}
        self._task = ray.remote(max_retries=config.max_retries, **resources)(_run_task)
        self._actor = ray.remote(max_restarts=config.max_retries, max_task_retries=config.max_retries, **resources)(
            _StatefulWorker
        )

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
        fn_ref = ray.put(fn)
        futures = [self._task.remote(fn_ref, item, self.config.cpus_per_worker) for item in items]
        return (ray.get(future) for future in futures)

    def map_with_state(
        self, make: Callable[[], State], call: Callable[[State, Item], Result], items: Sequence[Item]
    ) -> Iterator[Result]:
        if not items:
            return iter(())
        n_actors = min(self.workers, len(items))
        actors = [self._actor.remote(make, self.config.cpus_per_worker) for _ in range(n_actors)]
        pool = ActorPool(actors)
        return pool.map(lambda actor, item: actor.call.remote(call, item), list(items))

    def close(self) -> None:
        if self._owns_cluster and ray.is_initialized():
            ray.shutdown()
        self._owns_cluster = False

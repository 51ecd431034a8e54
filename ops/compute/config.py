"""Typed configuration of where parallel work runs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ComputeMode(StrEnum):
    LOCAL = "local"  # everything in the calling process, in order (today's behaviour)
    RAY = "ray"  # tasks and stateful workers on a Ray cluster


@dataclass(frozen=True)
class ComputeConfig:
    mode: ComputeMode = ComputeMode.LOCAL  # local unless a deployment asks for Ray
    address: str = ""  # Ray: "host:port" of an existing cluster; empty = start a private one on this machine
    workers: int = 2  # Ray: stateful workers (actors) per `map_with_state`, and CPUs of a private cluster
    cpus_per_worker: float = 1.0  # Ray: CPUs each task or worker reserves (and its torch threads)
    gpus_per_worker: float = 0.0  # Ray: GPUs each task or worker reserves (0 on a CPU cluster)
    max_retries: int = 2  # Ray: re-runs of a task whose worker process died (a killed worker's task runs again)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", ComputeMode(self.mode))  # accept "local"/"ray" from Dagster config
        if self.workers < 1 or self.cpus_per_worker <= 0 or self.gpus_per_worker < 0 or self.max_retries < 0:
            raise ValueError(f"workers >= 1, cpus_per_worker > 0, gpus_per_worker >= 0, max_retries >= 0: {self}")


# Tests and smoke runs: a private 2-CPU Ray cluster, one thread per worker.
TEST_RAY_CONFIG = ComputeConfig(mode=ComputeMode.RAY, workers=2, cpus_per_worker=1.0)

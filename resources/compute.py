"""Where a stage's parallel work runs: ``local`` (the default, in the run's process) or ``ray`` (a Ray cluster).

Assets do not change with the mode: they open `ComputeResource.executor()` and hand the `ops.compute.Executor` to
their stage, which gives the same table either way. ``ray`` with an empty ``address`` starts a private cluster on
this machine for the run and stops it afterwards; with an address (``host:port``, e.g. from ``$SEMID_RAY_ADDRESS``
through `EnvVar`) it joins a running cluster and leaves it running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from ops.compute import ComputeConfig, ComputeMode, Executor, executor

_DEFAULTS = ComputeConfig()


class ComputeResource(ConfigurableResource):
    """How parallel stages run; the default keeps everything in the run's own process."""

    mode: Literal["local", "ray"] = Field(  # the values of `ComputeMode` (resources may not import assets)
        default=_DEFAULTS.mode.value, description="'local' (in process) or 'ray' (needs the `scale` extra)."
    )
    address: str = Field(
        default=_DEFAULTS.address,
        description="Ray cluster to join (host:port); empty starts a private cluster on this machine for the run.",
    )
    workers: int = Field(default=_DEFAULTS.workers, description="Ray workers per stage (and a private cluster's CPUs).")
    cpus_per_worker: float = Field(default=_DEFAULTS.cpus_per_worker, description="CPUs (torch threads) per worker.")
    gpus_per_worker: float = Field(default=_DEFAULTS.gpus_per_worker, description="GPUs per worker (0 on CPUs).")
    max_retries: int = Field(default=_DEFAULTS.max_retries, description="Re-runs of a task whose worker died.")

    def compute_config(self) -> ComputeConfig:
        return ComputeConfig(
            mode=ComputeMode(self.mode),
            address=self.address,
            workers=self.workers,
            cpus_per_worker=self.cpus_per_worker,
            gpus_per_worker=self.gpus_per_worker,
            max_retries=self.max_retries,
        )

    @contextmanager
    def executor(self) -> Iterator[Executor]:
        """The executor for one stage; a private Ray cluster it started is stopped when the block ends."""
        running = executor(self.compute_config())
        try:
            yield running
        finally:
            running.close()

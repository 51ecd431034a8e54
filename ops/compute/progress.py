"""How rank 0 of a ``torchrun`` job reports what it does: Dagster Pipes, plus its own output.

When a Dagster asset launched the job (`launch_env` then holds a Pipes session's variables), rank 0 opens Dagster
Pipes: its log lines stream into the Dagster run's log and each epoch's metrics arrive as a Pipes custom message,
which the asset logs to the run and to MLflow as they come. Every rank-0 report is also printed (epochs as
``<prefix><json>`` lines), so the job's output tells the same story when no Dagster run is listening: a benchmark,
a test, or ``torchrun`` typed by hand. Other ranks report nothing: one writer per Pipes session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes


class JobProgress:
    """Rank 0's reporter: `log` for what happens, `epoch` for one epoch's metrics (both printed, and sent
    through Pipes when a Dagster run launched the job); on any other rank both do nothing."""

    def __init__(self, epoch_prefix: str, pipes: PipesContext | None, is_main: bool) -> None:
        self._prefix = epoch_prefix
        self._pipes = pipes
        self._is_main = is_main

    def log(self, message: str) -> None:
        if not self._is_main:
            return
        print(message, flush=True)
        if self._pipes is not None:
            self._pipes.log.info(message)

    def epoch(self, entry: dict[str, Any]) -> None:
        if not self._is_main:
            return
        print(self._prefix + json.dumps(entry), flush=True)
        if self._pipes is not None:
            self._pipes.report_custom_message(entry)


@contextmanager
def job_progress(epoch_prefix: str, is_main: bool) -> Iterator[JobProgress]:
    """A `JobProgress` for the block; rank 0 closes its Pipes session at the end (with the error, if one
    escapes), so the launching asset sees the job finish."""
    if not (is_main and PipesEnvVarParamsLoader().is_dagster_pipes_process()):
        yield JobProgress(epoch_prefix, None, is_main)
        return
    with open_dagster_pipes() as pipes:
        yield JobProgress(epoch_prefix, pipes, is_main)


def epoch_entry(line: str, epoch_prefix: str) -> dict[str, Any] | None:
    """The epoch metrics in one printed line of the job's output, or None for any other line."""
    _, found, payload = line.partition(epoch_prefix)
    return json.loads(payload) if found else None

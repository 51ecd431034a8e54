"""Runs whose process was killed (``kill -9``, an out-of-memory kill, a closed laptop) are marked failed.

A killed run cannot report its own end, so Dagster's instance keeps it STARTED forever and MLflow keeps its
runs RUNNING. Every event Dagster records carries the pid of the process that emitted it, and a run's
``RUN_START`` event comes from the process that orchestrates the run (the CLI, or the run worker the daemon
launched). A STARTED run is dead when that process no longer exists, or the pid now belongs to a process that
started after the run did (pid reuse). This module finds such runs; `MlflowTracking` calls it when a run starts,
the one moment every step of every job passes through.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

CLOCK_SLACK_SECONDS = 2.0  # /proc start times are in clock ticks; event timestamps in wall seconds


def process_start_time(pid: int) -> float | None:
    """Wall-clock start of process ``pid`` in seconds since the epoch (Linux ``/proc``), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the parenthesised command name
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")


def orchestrator_alive(instance: DagsterInstance, run_id: str) -> bool | None:
    """Whether the process that started run ``run_id`` still runs; None when the run has no start event yet."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid
    if pid is None:
        return None
    started = process_start_time(pid)
    return started is not None and started <= entry.timestamp + CLOCK_SLACK_SECONDS


def fail_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark every STARTED run whose orchestrating process is gone as failed; returns their run ids."""
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        if orchestrator_alive(instance, run.run_id) is False:
            instance.report_run_failed(
                run, message="The process running this run is gone (killed or crashed); marked failed by a later run."
            )
            failed.append(run.run_id)
    return failed


def finished(instance: DagsterInstance, run_id: str) -> bool:
    """Whether Dagster run ``run_id`` has ended (or is unknown to this instance)."""
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished

"""The executor contract on both implementations: input order, state built once per worker, a killed task re-run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops.compute import ComputeConfig, LocalExecutor, executor


def _square(x: int) -> int:
    return x * x


class _Counter:
    """A state that remembers which process built it and how many items it served."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.served = 0


def _serve(state: _Counter, item: int) -> tuple[int, int, int]:
    state.served += 1
    return item * 10, state.pid, state.served


def test_local_is_in_order_and_builds_state_once():
    local = executor(ComputeConfig())
    assert isinstance(local, LocalExecutor)
    assert list(local.map(_square, [3, 1, 2])) == [9, 1, 4]
    results = list(local.map_with_state(_Counter, _serve, [5, 6, 7]))
    assert [r[0] for r in results] == [50, 60, 70] and [r[2] for r in results] == [1, 2, 3]


def test_ray_keeps_input_order(ray_executor):
    items = list(range(23))
    assert list(ray_executor.map(_square, items)) == list(LocalExecutor().map(_square, items))


def test_ray_workers_build_their_state_once(ray_executor):
    results = list(ray_executor.map_with_state(_Counter, _serve, list(range(12))))
    assert [r[0] for r in results] == [i * 10 for i in range(12)]
    pids = {pid for _, pid, _ in results}
    assert len(pids) == 2 and os.getpid() not in pids  # two actors, neither is this process
    for pid in pids:  # each actor's one state served its items 1, 2, 3, ... (never rebuilt)
        served = [n for _, p, n in results if p == pid]
        assert sorted(served) == list(range(1, len(served) + 1))


def _die_once(marker: Path) -> str:
    if not marker.exists():
        marker.write_text("killed")
        os._exit(1)  # the worker process dies, as under the OOM killer or a lost node
    return "second attempt"


def test_ray_reruns_a_task_whose_worker_died(ray_executor, tmp_path):
    marker = tmp_path / "attempted"
    assert list(ray_executor.map(_die_once, [marker])) == ["second attempt"]
    assert marker.read_text() == "killed"


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="workers >= 1"):
        ComputeConfig(workers=0)
    with pytest.raises(ValueError):
        ComputeConfig(mode="spark")

"""The study grid (4 cells) on a 2-worker Ray cluster: local results, a killed worker's cell re-run, then all hits."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import polars as pl

from ops.ctr.stage import TRAIN_STAGE
from ops.ctr.study import StudyConfig, run_study
from tests.ops.compute.ray_fixtures import _ray_cluster, ray_executor  # noqa: F401

SAME = ["backbone", "kind", "scale", "fusion", "seed", "test_auc", "test_logloss", "valid_auc", "epochs"]


def _running_task_pids() -> list[int]:
    """Ray worker processes running a task now (Ray titles them ``ray::_run_task`` while they do)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_run_task"):
                pids.append(int(entry.name))
        except OSError:  # the process ended while we looked
            continue
    return pids


def _kill_first_builder(stage_folder: Path, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL one worker as soon as a cell's build is under way (its temporary folder exists)."""
    while not stop.is_set():
        if stage_folder.is_dir() and any(p.name.startswith(".tmp-") for p in stage_folder.iterdir()):
            pids = _running_task_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
        time.sleep(0.02)


def test_study_on_ray_matches_local_survives_a_killed_worker_and_caches(gift_cards, ray_executor, tmp_path):  # noqa: F811
    prepared = gift_cards.prepared
    inputs = (prepared.kcore, prepared.splits, prepared.embeddings, StudyConfig.test())
    local = run_study(tmp_path / "local", *inputs)  # its own root: the session's root stays untouched for others

    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_builder, args=(tmp_path / "ray" / TRAIN_STAGE, killed, stop))
    killer.start()
    epochs: list[dict] = []

    @contextlib.contextmanager
    def hook(cell):
        yield epochs.append

    try:
        remote = run_study(tmp_path / "ray", *inputs, hook, ray_executor)
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1  # one worker died mid-cell; Ray re-ran its task
    assert remote.select(SAME).equals(local.select(SAME))
    assert len(epochs) == local["epochs"].sum()  # every trained cell's epochs reached the hook afterwards
    versions = sorted(p.name for p in (tmp_path / "ray" / TRAIN_STAGE).iterdir() if not p.name.startswith("."))
    assert len(versions) == 4  # no leftovers of the killed build among the versions

    epochs.clear()
    again = run_study(tmp_path / "ray", *inputs, hook, ray_executor)
    assert again.equals(remote) and epochs == []  # all four cells cache hits: nothing trained, nothing replayed
    assert sorted(p.name for p in (tmp_path / "ray" / TRAIN_STAGE).iterdir() if not p.name.startswith(".")) == versions
    assert pl.Series(again["test_auc"]).is_between(0, 1).all()

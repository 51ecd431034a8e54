"""The publish protocol under concurrency and crashes: two builders of one version, a killed builder, readers.

Builders run in separate processes (spawned, so each has its own interpreter as two `main` runs would), and one
of them is slowed in the middle of its build: the case that once published a folder missing its data.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from ops.caching import MANIFEST, is_complete, run_cached
from ops.locks import file_lock

VERSION = "00112233aabbccdd"
PARTS = 5  # files a build writes, one after another


def slow_build(folder: Path, pause: float, started: Path | None = None) -> dict[str, int]:
    """Write PARTS files with a pause between them; the manifest lists what a complete version must hold."""
    if started is not None:
        started.write_text(str(os.getpid()))
    for part in range(PARTS):
        (folder / f"part{part}.txt").write_text(f"part {part} by {os.getpid()}")
        time.sleep(pause)
    return {"parts": PARTS, "builder": os.getpid()}


def build_in_child(root: str, pause: float, started: str | None, calls: str) -> None:
    def build(folder: Path) -> dict[str, int]:
        with open(calls, "a") as log:
            log.write(f"{os.getpid()}\n")
        return slow_build(folder, pause, Path(started) if started else None)

    output = run_cached(Path(root), "stage", VERSION, build)
    Path(root, f"result-{os.getpid()}").write_text("hit" if output.cache_hit else "built")


def spawn(*args: object) -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(target=build_in_child, args=args)
    process.start()
    return process


def assert_complete_version(root: Path) -> None:
    folder = root / "stage" / VERSION
    assert is_complete(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, *(f"part{i}.txt" for i in range(PARTS))])


def test_two_processes_building_one_version_publish_it_once_complete_and_a_third_call_hits(tmp_path):
    calls = tmp_path / "calls.log"
    slow = spawn(str(tmp_path), 0.4, str(tmp_path / "started"), str(calls))  # ~2 s build
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():  # the second builder arrives mid-build
        assert time.monotonic() < deadline, "first builder never started"
        time.sleep(0.05)
    fast = spawn(str(tmp_path), 0.0, None, str(calls))
    for process in (slow, fast):
        process.join(120)
        assert process.exitcode == 0
    assert len(calls.read_text().split()) == 1  # the second one waited, then found the first one's version
    results = sorted(p.read_text() for p in tmp_path.glob("result-*"))
    assert results == ["built", "hit"]
    assert_complete_version(tmp_path)
    third = run_cached(tmp_path, "stage", VERSION, lambda folder: {"parts": 0})
    assert third.cache_hit and third.manifest["parts"] == PARTS
    assert not list((tmp_path / "stage").glob(".tmp-*"))


def test_a_killed_builder_leaves_nothing_served_and_the_next_build_cleans_its_folder(tmp_path):
    calls = tmp_path / "calls.log"
    started = tmp_path / "started"
    victim = spawn(str(tmp_path), 5.0, str(started), str(calls))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "builder never started"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(30)
    leftovers = list((tmp_path / "stage").glob(".tmp-*"))
    assert len(leftovers) == 1 and not is_complete(tmp_path / "stage" / VERSION)
    rebuilt = run_cached(tmp_path, "stage", VERSION, lambda folder: slow_build(folder, 0.0))
    assert not rebuilt.cache_hit  # the killed run's folder was never taken for a version
    assert_complete_version(tmp_path)
    assert not list((tmp_path / "stage").glob(".tmp-*"))


def test_cleaning_never_touches_a_live_build_of_another_version(tmp_path):
    started = tmp_path / "started"
    live = spawn(str(tmp_path), 0.5, str(started), str(tmp_path / "calls.log"))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "builder never started"
        time.sleep(0.05)
    run_cached(tmp_path, "stage", "99999999aaaaaaaa", lambda folder: {})  # cleans dead temporaries of the stage
    live.join(120)
    assert live.exitcode == 0
    assert_complete_version(tmp_path)


def test_a_cache_hit_removes_a_dead_runs_leftover_but_not_a_live_one(tmp_path):
    run_cached(tmp_path, "stage", VERSION, lambda folder: slow_build(folder, 0.0))
    dead = tmp_path / "stage" / f".tmp-{VERSION}-deadbeef"  # a killed run's folder: nobody holds its lock
    live_version = "1111111122222222"
    live = tmp_path / "stage" / f".tmp-{live_version}-cafebabe"  # a build in progress: its lock is held
    dead.mkdir()
    live.mkdir()
    with file_lock(tmp_path / ".locks" / "stage" / f"{live_version}.lock"):
        assert run_cached(tmp_path, "stage", VERSION, lambda folder: {}).cache_hit
        assert not dead.exists() and live.exists()

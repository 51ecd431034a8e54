"""A run killed with ``kill -9`` is marked failed in Dagster and KILLED in MLflow when the next run starts, whichever
stage's experiment it is in; a live run is left alone; two first runs at once both set up the MLflow database."""

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dagster import AssetExecutionContext, DagsterInstance, DagsterRunStatus, asset, materialize

from assets.publishing import tracked_run
from resources import MlflowTracking
from resources.run_liveness import fail_dead_runs
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


@asset
def quick(context: AssetExecutionContext, mlflow: MlflowTracking) -> int:
    with tracked_run(context, mlflow, "quick", {}):
        return 1


def start_sleeping_run(tmp_path: Path, tracking: MlflowTracking) -> "tuple[subprocess.Popen[bytes], Path]":
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    marker = tmp_path / "sleeping.pid"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SLEEPING_MARKER": str(marker),
        "SLEEPING_TRACKING_URI": tracking.tracking_uri,
        "SLEEPING_ARTIFACTS": tracking.artifact_root,
    }
    command = [BIN / "dagster", "job", "execute", "-f", Path(__file__).with_name("sleeping_job.py"), "-j", "sleep"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert process.poll() is None, "the sleeping run ended before it slept"
        assert time.monotonic() < deadline, "the sleeping run never started"
        time.sleep(0.2)
    return process, home


def test_a_killed_run_is_marked_failed_and_its_mlflow_run_killed_by_the_next_run(tmp_path, monkeypatch):
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art"))
    process, home = start_sleeping_run(tmp_path, tracking)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's dagster.yaml reads it
    instance = DagsterInstance.from_config(str(home))
    (running,) = instance.get_runs()
    assert running.status == DagsterRunStatus.STARTED
    assert fail_dead_runs(instance) == []  # alive: left alone

    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert instance.get_run_by_id(running.run_id).status == DagsterRunStatus.STARTED  # nobody said it ended

    assert materialize([quick], instance=instance, resources={"mlflow": tracking}).success
    assert instance.get_run_by_id(running.run_id).status == DagsterRunStatus.FAILURE
    with tracking._locked_client() as client:
        statuses = {
            experiment.name: {
                run.info.run_name: run.info.status for run in client.search_runs([experiment.experiment_id])
            }
            for experiment in client.search_experiments()
        }
    # the killed run is in another stage's experiment than the run that found it
    assert statuses == {
        "semid/sleeping": {"sleeping:default": "KILLED"},
        "semid/quick": {"quick:default": "FINISHED"},
        "Default": {},
    }


def open_first_run(tracking_uri: str, artifact_root: str, name: str) -> str:
    tracking = MlflowTracking(tracking_uri=tracking_uri, artifact_root=artifact_root)
    with tracking.start_run(name, "first") as run:
        return run.run_id


def test_two_first_runs_at_once_both_set_up_tracking(tmp_path):
    """Processes racing to create the SQLite schema and the experiment: it happens once, and no run fails."""
    uri, artifacts = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "art")
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        run_ids = list(pool.map(open_first_run, [uri] * 3, [artifacts] * 3, ["a", "b", "c"]))
    assert len(set(run_ids)) == 3

"""Real processes for tests that use semid as a user does: the Dagster CLI, `dagster dev`, `mlflow ui`.

Every process gets an isolated Dagster home and output root under the test's temporary folder and binds to
127.0.0.1 on a free port; servers are stopped (their whole process group) when the test leaves the block.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO_ROOT, shared_data_root

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 300  # `dagster dev` loads the definitions twice (webserver and daemon): ~1 min on 2 busy cores


def cli_env(tmp_path: Path) -> dict[str, str]:
    """An isolated instance: the repo's dagster.yaml copied into a temporary DAGSTER_HOME, outputs in tmp."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEMID_OUTPUT_ROOT": str(tmp_path / "out"),
        "SEMID_DATA_ROOT": str(shared_data_root()),
        "HF_HUB_OFFLINE": "1",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(command: Sequence[str | Path], url: str, env: dict[str, str], cwd: Path, log: Path) -> Iterator[str]:
    """Start ``command`` (a server) in its own process group, wait until ``url`` answers, yield it; stop it after.

    The server's output goes to ``log``, whose tail is the failure message when it never answers.
    """
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(part) for part in command], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _answers(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not serve {url}:\n{log.read_text()[-3000:]}")
                time.sleep(1)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # `dagster dev` stops its webserver and daemon with it
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def graphql(url: str, query: str) -> dict:
    """``query`` against the Dagster webserver at ``url`` (http://127.0.0.1:<port>)."""
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_job(workspace: Path, job: str, partition: str, run_config: dict, timeout: float = 1200) -> None:
    """``dagster job execute`` of ``job`` on ``partition`` with ``run_config``, into ``workspace``'s instance."""
    config = workspace / f"{job}_run_config.yaml"
    config.write_text(json.dumps(run_config))  # JSON is YAML
    command = [
        BIN / "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", job,
        "--tags", json.dumps({"dagster/partition": partition}), "-c", config,
    ]  # fmt: skip
    completed = subprocess.run(
        command, check=False, cwd=workspace, env=cli_env(workspace), capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

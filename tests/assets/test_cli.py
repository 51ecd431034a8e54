"""The Dagster CLI and webserver, run as a user runs them: a real process on the embedded SQLite instance."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO_ROOT, shared_data_root

BIN = Path(sys.executable).parent


def cli_env(tmp_path: Path) -> dict[str, str]:
    """An isolated instance: the repo's dagster.yaml copied into a temporary DAGSTER_HOME, outputs in tmp."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEMID_OUTPUT_ROOT": str(tmp_path / "out"),
        "SEMID_DATA_ROOT": str(shared_data_root()),
        "HF_HUB_OFFLINE": "1",
    }


def test_definitions_validate(tmp_path):
    completed = subprocess.run(
        [BIN / "dagster", "definitions", "validate", "-m", "pipelines.definitions"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_main_job_ingests_beauty_end_to_end(shared_data, tmp_path):
    """`make run`'s command on the real Beauty 5-core; the counts are those of its PROVENANCE.md."""
    shared_data("amazon2014-beauty-5core")
    env = cli_env(tmp_path)
    command = [
        BIN / "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "main",
        "--tags", json.dumps({"dagster/partition": "amazon2014-beauty"}),
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (kcore_version,) = (tmp_path / "out" / "kcore").iterdir()
    manifest = json.loads((kcore_version / "manifest.json").read_text())
    assert manifest["k"] == 5
    assert manifest["rows"]["users"] == 22_363
    assert manifest["rows"]["items"] == 12_101
    assert manifest["rows"]["interactions"] == 198_502
    (normalized_version,) = (tmp_path / "out" / "normalized").iterdir()
    normalized = json.loads((normalized_version / "manifest.json").read_text())
    assert normalized["rows"]["interactions"] == manifest["rows"]["interactions"]  # k=5 keeps everything
    items = pl.read_parquet(kcore_version / "items.parquet")
    assert items.filter(pl.col("has_text")).height == 12_101
    assert items["title"].is_not_null().sum() >= 12_094  # PROVENANCE: 7 of 12,101 titles are empty
    assert (tmp_path / "dagster_home" / "history" / "runs.db").is_file(), "the run is recorded in the SQLite instance"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_webserver_lists_assets_over_graphql(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [BIN / "dagster-webserver", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                payload = graphql(port, "{ assetNodes { assetKey { path } groupName } }")
                if payload.get("data", {}).get("assetNodes"):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver did not serve assets: {server.stderr.read().decode()[-2000:]}")
            time.sleep(1)
        names = {node["assetKey"]["path"][-1] for node in payload["data"]["assetNodes"]}
        assert {"normalized_dataset", "kcore_dataset", "dataset_splits"} <= names
    finally:
        server.terminate()
        server.wait(timeout=60)

"""The Dagster CLI and webserver, run as a user runs them: a real process on the embedded SQLite instance."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from tests.servers import BIN, cli_env, free_port, graphql, run_job


def test_definitions_validate(tmp_path):
    completed = subprocess.run(
        [BIN / "dagster", "definitions", "validate", "-m", "pipelines.definitions"],
        check=False,  # the assertion below shows stderr when it fails
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# The default is 200 epochs (~1.5 min here); the test checks the wiring, `make bench-tokenizers` the quality.
TEST_RUN_CONFIG = {"ops": {"tokenizer_rqvae": {"config": {"epochs": 30}}}}


def run_main_job(tmp_path: Path, partition: str) -> None:
    run_job(tmp_path, "main", partition, TEST_RUN_CONFIG, timeout=900)


def latest_metadata(tmp_path: Path, asset: str) -> dict:
    """Metadata of the asset's latest materialization, read back from the run's SQLite instance."""
    with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(AssetKey(asset))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def only_version(tmp_path: Path, stage: str) -> Path:
    (version,) = (tmp_path / "out" / stage).iterdir()
    return version


def test_main_job_on_beauty_end_to_end_then_cache_hit(shared_data, tmp_path, monkeypatch):
    """`make run`'s command on the real Beauty 5-core: PROVENANCE counts, MiniLM vectors, an RQ-VAE 3x256 table,
    a DCNv2 with its Semantic-ID features, then a second run that does no work."""
    shared_data("amazon2014-beauty-5core")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # the instance config reads it
    run_main_job(tmp_path, "amazon2014-beauty")
    assert (tmp_path / "dagster_home" / "history" / "runs.db").is_file(), "the run is recorded in the SQLite instance"

    kcore = json.loads((only_version(tmp_path, "kcore") / "manifest.json").read_text())
    assert kcore["k"] == 5
    assert kcore["rows"] == {"items": 12_101, "users": 22_363, "interactions": 198_502, "rejects": 0}
    normalized = json.loads((only_version(tmp_path, "normalized") / "manifest.json").read_text())
    assert normalized["rows"]["interactions"] == 198_502  # k=5 keeps everything
    items = pl.read_parquet(only_version(tmp_path, "kcore") / "items.parquet")
    assert items.filter(pl.col("has_text")).height == 12_101
    assert kcore["items_with_title"] == 12_094  # PROVENANCE: 7 of the 12,101 titles are empty

    embeddings = pl.read_parquet(only_version(tmp_path, "embeddings") / "embeddings.parquet")
    vectors = embeddings["vector"].to_numpy()
    assert vectors.shape == (12_101, 384)
    assert not np.isnan(vectors).any()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert latest_metadata(tmp_path, "item_embeddings")["cache"] == "computed"

    table = pl.read_parquet(only_version(tmp_path, "semantic_ids") / "semantic_ids.parquet")
    assert table.height == 12_101
    assert table["codes"].list.len().unique().to_list() == [3]  # RQ-VAE, 3 levels
    assert table.select(pl.col("codes").cast(pl.List(pl.String)).list.join(" "), "collision_suffix").is_unique().all()
    manifest = json.loads((only_version(tmp_path, "semantic_ids") / "manifest.json").read_text())
    assert manifest["tokenizer"]["kind"] == "rqvae" and manifest["codebook_size"] == 256

    samples = json.loads((only_version(tmp_path, "ctr_samples") / "manifest.json").read_text())
    assert samples["label_mode"] == "sampled"  # the P5 derivative has no ratings: one stored negative per positive
    assert samples["rows"] == 2 * 198_502
    ctr_model = json.loads((only_version(tmp_path, "ctr_model") / "manifest.json").read_text())
    assert ctr_model["semantic_ids"]["fingerprint"] == only_version(tmp_path, "semantic_ids").name
    assert ctr_model["test_auc"] > 0.75  # measured 0.79-0.80 for ID + RQ-VAE 3x features

    assert latest_metadata(tmp_path, "semantic_ids_rqvae")["path"] == str(only_version(tmp_path, "semantic_ids"))

    start = time.monotonic()
    run_main_job(tmp_path, "amazon2014-beauty")
    no_op_seconds = time.monotonic() - start
    assert no_op_seconds < 60, f"a re-run with nothing changed took {no_op_seconds:.0f} s"  # ~20 s measured
    for asset in (
        "normalized_dataset", "kcore_dataset", "dataset_splits", "item_embeddings", "tokenizer_rqvae",
        "semantic_ids_rqvae",
        "ctr_samples", "ctr_model",
    ):  # fmt: skip
        assert latest_metadata(tmp_path, asset)["cache"] == "cache hit", asset


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
                payload = graphql(f"http://127.0.0.1:{port}", "{ assetNodes { assetKey { path } groupName } }")
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

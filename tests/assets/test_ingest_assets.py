"""The ingest asset group materializes on real data, caches, tracks in MLflow, and fails loudly on bad files."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from dagster import DagsterInstance, materialize

from assets import embeddings, ingest
from ops.caching import StageOutput
from ops.ingest import stages
from ops.ingest.datasets import BUILTIN_DATASETS, get_dataset
from pipelines.definitions import defs
from resources import MlflowTracking, StorageResource
from tests.assets.test_cli import BIN, cli_env, latest_metadata

INGEST_ASSETS = [ingest.normalized_dataset, ingest.kcore_dataset, ingest.dataset_splits]


def materialization_metadata(result, asset_name):
    events = [event for event in result.get_asset_materialization_events() if event.asset_key.path[-1] == asset_name]
    assert len(events) == 1
    return events[0].materialization.metadata


def test_defs_load_with_every_stage_group():
    repository = defs.get_repository_def()
    groups = {node.group_name for node in repository.asset_graph.asset_nodes}
    assert ingest.GROUP in groups
    assert {"main", "ingest"} <= {job.name for job in repository.get_all_jobs()}


def test_ingest_group_materializes_then_hits_cache(shared_data, tmp_resources, tmp_path):
    shared_data("amazon2018-gift-cards")
    instance = DagsterInstance.ephemeral()
    first = materialize(
        INGEST_ASSETS, resources=tmp_resources, partition_key="amazon2018-gift-cards", instance=instance
    )
    assert first.success
    metadata = materialization_metadata(first, "normalized_dataset")
    assert metadata["cache"].value == "computed"
    assert metadata["rows/interactions"].value == 2972
    assert metadata["mlflow_run"].value.startswith("http://127.0.0.1:5000/#/experiments/")
    assert metadata["path"].value == str(tmp_path / "out" / "normalized" / metadata["fingerprint"].value)
    splits_output: StageOutput = first.output_for_node("dataset_splits")
    assert set(splits_output.manifest["splits"]) == {"leave_one_out", "random"}

    second = materialize(
        INGEST_ASSETS, resources=tmp_resources, partition_key="amazon2018-gift-cards", instance=instance
    )
    for name in ("normalized_dataset", "kcore_dataset", "dataset_splits"):
        assert materialization_metadata(second, name)["cache"].value == "cache hit"
    assert second.output_for_node("dataset_splits").fingerprint == splits_output.fingerprint


def test_changed_config_makes_a_new_version_and_keeps_the_old(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")

    def run(k: int):
        return materialize(
            INGEST_ASSETS[:2],
            resources=tmp_resources,
            partition_key="amazon2018-gift-cards",
            run_config={"ops": {"kcore_dataset": {"config": {"k": k}}}},
        ).output_for_node("kcore_dataset")

    five, ten = run(5), run(10)
    assert five.fingerprint != ten.fingerprint
    assert five.file("interactions.parquet").exists() and ten.file("interactions.parquet").exists()
    assert ten.manifest["rows"]["interactions"] < five.manifest["rows"]["interactions"]


def test_too_many_rejects_fail_naming_file_line_field(tmp_path):
    folder = tmp_path / "raw" / "amazon2014-musical-instruments-5core-prefix"
    folder.mkdir(parents=True)
    good = {"reviewerID": "AUSER1", "asin": "B000000001", "overall": 5.0, "unixReviewTime": 1393545600}
    lines = [json.dumps({**good, "reviewerID": f"AUSER{n}"}) for n in range(5)]
    lines.insert(2, json.dumps({**good, "overall": "five stars"}))
    (folder / "Musical_Instruments_5.json").write_text("\n".join(lines) + "\n")
    resources = {
        "storage": StorageResource(data_root=str(tmp_path / "raw"), output_root=str(tmp_path / "out")),
        "mlflow": MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "a")),
    }
    with pytest.raises(Exception, match=r"Musical_Instruments_5\.json:3:overall"):
        materialize([ingest.normalized_dataset], resources=resources, partition_key="amazon2014-musical-instruments")
    kept = list((tmp_path / "out" / "rejects").glob("*.parquet"))
    assert len(kept) == 1
    assert not (tmp_path / "out" / "normalized").exists() or not any((tmp_path / "out" / "normalized").iterdir())


def test_run_config_overrides_the_data_sets_split(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    result = materialize(
        INGEST_ASSETS,
        resources=tmp_resources,
        partition_key="amazon2018-gift-cards",
        run_config={
            "ops": {
                "dataset_splits": {"config": {"train_fraction": 0.5, "valid_fraction": 0.25, "test_fraction": 0.25}}
            }
        },
    )
    random = result.output_for_node("dataset_splits").manifest["splits"]["random"]
    assert random["train"] == round(0.5 * sum(random.values()))


def test_a_user_data_set_declared_in_yaml_is_a_partition_that_ingests_like_the_builtin(
    shared_data, tmp_path, monkeypatch
):
    """As a user does it: a copy of Gift Cards under another name, a YAML file outside the repository named by
    $SEMID_DATASETS, and the CLI; the partition exists and the tables have the built-in's counts."""
    builtin = get_dataset("amazon2018-gift-cards")
    shutil.copytree(shared_data(builtin.folder), tmp_path / "raw" / "my-cards")
    (tmp_path / "yaml").mkdir()
    yaml_text = (BUILTIN_DATASETS / f"{builtin.name}.yaml").read_text().replace(builtin.folder, "my-cards")
    (tmp_path / "yaml" / "my-gift-cards.yaml").write_text(yaml_text)
    env = {**cli_env(tmp_path), "SEMID_DATA_ROOT": str(tmp_path / "raw"), "SEMID_DATASETS": str(tmp_path / "yaml")}
    command = [
        BIN / "dagster", "asset", "materialize", "-m", "pipelines.definitions",
        "--select", "normalized_dataset,kcore_dataset,dataset_splits", "--partition", "my-gift-cards",
    ]  # fmt: skip
    completed = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the instance config reads it

    reference = tmp_path / "reference"
    normalized = stages.normalize(builtin, shared_data(builtin.folder).parent, reference, stages.NormalizeConfig())
    core = stages.kcore(normalized, reference, builtin.kcore)
    for asset, stage in (("normalized_dataset", normalized), ("kcore_dataset", core)):
        metadata = latest_metadata(tmp_path, asset)
        assert {name: metadata[f"rows/{name}"] for name in stage.manifest["rows"]} == stage.manifest["rows"]
    assert latest_metadata(tmp_path, "normalized_dataset")["rows/interactions"] == 2972


def test_a_data_set_without_item_text_ingests_and_its_embeddings_refuse(shared_data, tmp_resources):
    """Raw 2014 reviews without meta: the ID-based stages run; the embedding stage stops, saying why."""
    shared_data("amazon2014-musical-instruments-5core-prefix")
    run_config = {"ops": {"kcore_dataset": {"config": {"k": 1}}}}
    ingested = materialize(
        INGEST_ASSETS, resources=tmp_resources, partition_key="amazon2014-musical-instruments", run_config=run_config
    )
    interactions = ingested.output_for_node("kcore_dataset").manifest["rows"]["interactions"]
    assert interactions > 0
    assert sum(ingested.output_for_node("dataset_splits").manifest["splits"]["random"].values()) == interactions
    with pytest.raises(Exception, match="'amazon2014-musical-instruments' has no item text"):
        materialize(
            [*INGEST_ASSETS[:2], embeddings.item_embeddings],
            resources=tmp_resources,
            partition_key="amazon2014-musical-instruments",
            run_config=run_config,
        )

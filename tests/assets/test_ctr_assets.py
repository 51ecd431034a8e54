"""CTR assets through Dagster on a small real catalogue (Gift Cards 5-core): samples -> model on the table its
`tokenizer` names, and the study."""

import json

import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError, materialize
from mlflow.tracking import MlflowClient

from assets import ctr, embeddings, ingest, semantic_ids, tokenizers
from ops.ctr.stage import load_checkpoint

UPSTREAM = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    ingest.dataset_splits,
    embeddings.item_embeddings,
    tokenizers.TOKENIZER_ASSETS["rqvae"],
    semantic_ids.TABLE_ASSETS["rqvae"],
]
PARTITION = "amazon2018-gift-cards"
SMALL_TOKENIZER = {"scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64, "lr": 0.01}
SAMPLED = {"mode": "sampled"}  # Gift Cards ratings are nearly all 5: sampled negatives give both classes
SMALL_CTR = {"backbone": "deepfm", "max_epochs": 2, "batch_size": 256}


def materialize_ctr(tmp_resources, instance, ctr_config, tables=(), raise_on_error=True):
    """Ingestion, the RQ-VAE table and the families in ``tables``, then the CTR samples and model."""
    pairs = [assets[kind] for kind in tables for assets in (tokenizers.TOKENIZER_ASSETS, semantic_ids.TABLE_ASSETS)]
    return materialize(
        [*UPSTREAM, *pairs, ctr.ctr_samples, ctr.ctr_model],
        resources=tmp_resources,
        partition_key=PARTITION,
        instance=instance,
        raise_on_error=raise_on_error,
        run_config={
            "ops": {
                **{f"tokenizer_{kind}": {"config": SMALL_TOKENIZER} for kind in ("rqvae", *tables)},
                "ctr_samples": {"config": SAMPLED},
                "ctr_model": {"config": ctr_config},
            }
        },
    )


def mlflow_client(tmp_resources) -> MlflowClient:
    return MlflowClient(tracking_uri=tmp_resources["mlflow"].tracking_uri)


def test_ctr_model_reads_the_semantic_id_table_and_logs_every_epoch(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    instance = DagsterInstance.ephemeral()
    result = materialize_ctr(tmp_resources, instance, SMALL_CTR)
    model = result.output_for_node("ctr_model")
    table = result.output_for_node("semantic_ids_rqvae")
    assert model.manifest["semantic_ids"]["fingerprint"] == table.fingerprint
    assert {"sid0_0", "sid1_0"} <= {feature["name"] for feature in model.manifest["features"]}
    assert 0.0 <= model.manifest["test_auc"] <= 1.0 and model.manifest["epochs"] == 2
    samples = result.output_for_node("ctr_samples").manifest
    assert samples["label_mode"] == "sampled" and samples["counts"]["train/0"] == samples["counts"]["train/1"]

    client = mlflow_client(tmp_resources)
    (run,) = client.search_runs([client.get_experiment_by_name("semid/ctr_model").experiment_id], "")
    assert run.data.tags["tokenizer"] == "rqvae" and run.data.tags["dataset"] == PARTITION
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "valid/auc")) == [1, 2]
    assert {"model.pt", "history.json"} <= {artifact.path for artifact in client.list_artifacts(run.info.run_id)}

    again = materialize_ctr(tmp_resources, instance, SMALL_CTR)
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in again.get_asset_materialization_events()}
    assert events["ctr_model"]["cache"].value == "cache hit"

    id_only = materialize_ctr(tmp_resources, instance, {**SMALL_CTR, "use_semantic_ids": False})
    baseline = id_only.output_for_node("ctr_model").manifest
    assert baseline["semantic_ids"] is None and not any(f["name"].startswith("sid") for f in baseline["features"])

    pinned = materialize_ctr(tmp_resources, instance, {**SMALL_CTR, "semantic_ids_version": table.fingerprint})
    assert pinned.output_for_node("ctr_model").fingerprint == model.fingerprint  # same table pinned: a cache hit


def test_ctr_model_reads_the_table_its_tokenizer_names_and_refuses_one_never_built(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    instance = DagsterInstance.ephemeral()
    result = materialize_ctr(tmp_resources, instance, {**SMALL_CTR, "tokenizer": "moc"}, tables=("moc",))
    model = result.output_for_node("ctr_model")
    assert model.manifest["semantic_ids"]["fingerprint"] == result.output_for_node("semantic_ids_moc").fingerprint
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "ctr_model"]
    assert event.materialization.metadata["semantic_ids_table"].value == "semantic_ids_moc"
    (run,) = mlflow_client(tmp_resources).search_runs(
        [mlflow_client(tmp_resources).get_experiment_by_name("semid/ctr_model").experiment_id], "tags.tokenizer = 'moc'"
    )
    assert run.info.run_name == f"ctr_model:moc:{PARTITION}"

    never_built = materialize_ctr(tmp_resources, instance, {**SMALL_CTR, "tokenizer": "vqvae"}, raise_on_error=False)
    (failure,) = [e for e in never_built.all_events if e.is_step_failure]
    assert failure.step_key == "ctr_model"
    assert "semantic_ids_vqvae has no version for data set 'amazon2018-gift-cards'" in str(
        failure.step_failure_data.error
    )


def test_an_unknown_tokenizer_is_refused_at_launch(tmp_resources):
    with pytest.raises(DagsterInvalidConfigError, match=r"tokenizer.*not in enum type.*rqvea"):
        materialize_ctr(tmp_resources, DagsterInstance.ephemeral(), {**SMALL_CTR, "tokenizer": "rqvea"})


def test_scaling_study_writes_both_tables_and_nests_one_mlflow_run_per_cell(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    study = {
        "backbones": ["deepfm"],
        "kinds": ["rqvae", "moc"],
        "scales": [1, 2],
        "fusion": [False, True],
        "seeds": [0],
        "tokenizer_codebook_size": 16,
        "tokenizer_epochs": 3,
        "tokenizer_batch_size": 64,
        "max_epochs": 1,
        "batch_size": 256,
    }
    result = materialize(
        [*UPSTREAM[:4], ctr.scaling_study],
        resources=tmp_resources,
        partition_key=PARTITION,
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"scaling_study": {"config": study}}},
    )
    output = result.output_for_node("scaling_study")
    cells = 1 + 1 + 2 * 2  # ID only, 1x, (rqvae, moc) x 2x x (fusion off, on)
    assert output.manifest["runs"] == cells
    first = {(row["backbone"], row["kind"]): row for row in output.manifest["table1"]}
    assert set(first) == {("deepfm", "id"), ("deepfm", "rqvae"), ("deepfm", "moc")}
    assert first[("deepfm", "rqvae")]["1x"] and first[("deepfm", "moc")]["2x"]
    assert {"2x w/o", "2x w/"} <= set(output.manifest["table2"][0])

    client = mlflow_client(tmp_resources)
    experiment = client.get_experiment_by_name("semid/scaling_study").experiment_id
    (parent,) = client.search_runs([experiment], "tags.stage = 'scaling_study'")
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == cells
    assert all(client.get_metric_history(child.info.run_id, "valid/auc") for child in children)
    assert {child.data.tags["tokenizer"] for child in children} == {"none", "rqvae", "moc"}


def test_ctr_model_on_two_ddp_processes_matches_one_process(shared_data, tmp_resources):
    """`ddp_processes: 2` launches torchrun (gloo) from the asset through Dagster Pipes: rank 0's log lines reach the
    run's log and its per-epoch losses reach MLflow; they match the one-process model's on the same global batch,
    and its checkpoint loads."""
    shared_data("amazon2018-gift-cards")
    instance = DagsterInstance.ephemeral()
    single = materialize_ctr(tmp_resources, instance, SMALL_CTR).output_for_node("ctr_model")
    launched = materialize_ctr(tmp_resources, instance, {**SMALL_CTR, "ddp_processes": 2})
    ddp = launched.output_for_node("ctr_model")
    messages = [entry.user_message for entry in instance.all_logs(launched.run_id)]
    assert any("successfully opened dagster pipes" in message for message in messages)
    assert any("DDP deepfm: 2 ranks (gloo)" in message for message in messages)  # written by rank 0, via Pipes
    assert any("rank 0 wrote the checkpoint" in message for message in messages)
    assert not any("[pipes] did not receive" in message for message in messages)
    assert ddp.fingerprint != single.fingerprint  # a version of its own: float sums run in another order
    single_history = json.loads(single.file("history.json").read_text())
    ddp_history = json.loads(ddp.file("history.json").read_text())
    assert len(ddp_history) == len(single_history) == 2
    for a, b in zip(single_history, ddp_history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
    model, _, _ = load_checkpoint(ddp.file("model.pt"))
    assert sum(p.numel() for p in model.parameters()) > 0

    client = mlflow_client(tmp_resources)
    experiment = client.get_experiment_by_name("semid/ctr_model").experiment_id
    runs = client.search_runs([experiment], f"tags.fingerprint = '{ddp.fingerprint}'")
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")] == [1, 2]

"""The report asset through Dagster on a small real catalogue (Magazine Subscriptions: 134 items, with
categories): metadata with the answer, tables and an inline image, the files in MLflow, a cache hit when
nothing changed."""

from pathlib import Path

from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from assets import embeddings, ingest, reports, semantic_ids, tokenizers

PARTITION = "amazon2018-magazine-subscriptions"
ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    ingest.dataset_splits,
    embeddings.item_embeddings,
    tokenizers.TOKENIZER_ASSETS["moc"],
    semantic_ids.TABLE_ASSETS["moc"],
    reports.report,
]
RUN_CONFIG = {
    "ops": {
        "tokenizer_moc": {"config": {"scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64}},
        "report": {"config": {"cluster_counts": [2, 4, 8]}},
    }
}


def report_metadata(result):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "report"]
    return event.materialization.metadata


def test_report_asset_publishes_the_answer_an_inline_plot_and_mlflow_artifacts(shared_data, tmp_resources):
    shared_data(PARTITION)
    instance = DagsterInstance.ephemeral()
    result = materialize(
        ASSETS, resources=tmp_resources, partition_key=PARTITION, instance=instance, run_config=RUN_CONFIG
    )
    output = result.output_for_node("report")
    table = result.output_for_node("semantic_ids_moc")
    assert output.manifest["sources"]["semantic_ids"] == [table.fingerprint]
    assert "There is no CTR result for this data set yet" in output.manifest["answer"]

    metadata = report_metadata(result)
    assert metadata["cache"].value == "computed" and metadata["fingerprint"].value == output.fingerprint
    assert metadata["answer"].value == output.manifest["answer"]
    assert metadata["plot"].value.startswith("![downstream.png](data:image/png;base64,iVBOR")  # PNG magic, inline
    assert "| MoC 2x16 |" in metadata["summary"].value and "| Most popular |" in metadata["summary"].value
    html = Path(metadata["report_html"].value)
    assert html.is_file() and html.parent == Path(output.path)
    assert Path(tmp_resources["storage"].output_root).resolve() in html.resolve().parents

    client = MlflowClient(tracking_uri=tmp_resources["mlflow"].tracking_uri)
    experiment = client.get_experiment_by_name("semid/report").experiment_id
    (run,) = client.search_runs([experiment], f"tags.dataset = '{PARTITION}'")
    logged = {Path(artifact.path).name for artifact in client.list_artifacts(run.info.run_id, "report")}
    assert {"report.html", "report.md", "usage.png", "nmi.png", "correlation.png"} <= logged
    assert logged == set(output.manifest["files"])

    again = materialize(
        ASSETS, resources=tmp_resources, partition_key=PARTITION, instance=instance, run_config=RUN_CONFIG
    )
    assert report_metadata(again)["cache"].value == "cache hit"
    assert again.output_for_node("report").fingerprint == output.fingerprint

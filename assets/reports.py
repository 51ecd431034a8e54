"""Report asset: which tokenizer helps most on one data set, as plots, Markdown and HTML, in Dagster and MLflow."""

import base64

from dagster import AssetExecutionContext, AssetKey, Config, MetadataValue, Output, asset
from pydantic import Field

from assets.families import TABLE_KEYS
from assets.ingest import dataset_partitions
from assets.publishing import publish, tracked_run
from ops.caching import StageOutput
from ops.reports.stage import HTML, MARKDOWN, SUMMARY, ReportConfig, report_stage
from resources import MlflowTracking, StorageResource

GROUP = "reports"
ARTIFACT_FOLDER = "report"  # where the report's files go in the MLflow run
# Assets whose versions the report reads from disk (found by manifest, not loaded as inputs): non-data deps, so the
# graph shows the report downstream of them and marks it stale when they change. Keep in step with their keys.
READS = (
    *(key.path[-1] for key in TABLE_KEYS),
    "ctr_model",
    "scaling_study",
    "tiger_model",
    "retrieval_eval",
    "decoder_model",
    "decoder_eval",
    "sasrec_model",
)


class ReportParams(Config):
    cluster_counts: list[int] = Field(
        default=list(ReportConfig.cluster_counts),
        description="K-Means cluster counts of the NMI-vs-clusters curve (MoC paper Fig. 2b/3b); counts >= the "
        "number of items are skipped.",
    )
    seed: int = Field(default=ReportConfig.seed, description="Seed of the K-Means runs.")


@asset(group_name=GROUP, partitions_def=dataset_partitions, deps=[AssetKey(key) for key in READS])
def report(
    context: AssetExecutionContext,
    config: ReportParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
    dataset_splits: StageOutput,
    item_embeddings: StageOutput,
) -> Output[StageOutput]:
    """Every Semantic-ID table of this data set's embeddings side by side (codebook usage, collisions, NMI,
    singular spectra, codebook correlation), the CTR scaling tables and the retrieval table with a most-popular
    baseline, and a one-paragraph answer to "which tokenizer helps most here"; report.html opens on its own."""
    settings = ReportConfig(cluster_counts=tuple(config.cluster_counts), seed=config.seed)
    params = {
        "kcore": kcore_dataset.fingerprint,
        "splits": dataset_splits.fingerprint,
        "embeddings": item_embeddings.fingerprint,
        **config.model_dump(),
    }
    with tracked_run(context, mlflow, "report", params) as run:
        output = report_stage(storage.output_path, kcore_dataset, dataset_splits, item_embeddings, settings)
        for name in output.manifest["files"]:
            run.log_artifact(output.file(name), ARTIFACT_FOLDER)
        context.log.info(output.manifest["answer"])
        published = publish(context, run, output)
        return published.with_metadata({**published.metadata, **report_metadata(output)})


def report_metadata(output: StageOutput) -> dict[str, MetadataValue]:
    """The answer, the main tables and the main figure inline (the UI renders Markdown images), the file paths."""
    metadata = {
        "answer": MetadataValue.md(output.manifest["answer"]),
        "summary": MetadataValue.md(output.file(SUMMARY).read_text()),
        "report_html": MetadataValue.path(output.file(HTML)),
        "report_markdown": MetadataValue.path(output.file(MARKDOWN)),
    }
    main = output.manifest["main_figure"]
    if main is not None:
        data = base64.b64encode(output.file(main).read_bytes()).decode("ascii")
        metadata["plot"] = MetadataValue.md(f"![{main}](data:image/png;base64,{data})")
    return metadata

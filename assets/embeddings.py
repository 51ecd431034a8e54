"""Embeddings asset: item text of one data set -> one vector per item (MiniLM by default, SmolLM2, LLM2Vec)."""

from dataclasses import asdict

from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from assets.choices import one_of
from assets.ingest import dataset_partitions
from assets.publishing import publish, tracked_run
from ops.caching import StageOutput
from ops.embeddings import stage
from ops.embeddings.config import MINILM_CONFIG, EmbedderConfig, Pooling
from ops.embeddings.templates import TEMPLATES
from ops.ingest.datasets import get_dataset
from resources import MlflowTracking, StorageResource
from resources.compute import ComputeResource

GROUP = "embeddings"
LOG_EVERY = 2000  # texts between progress lines in the Dagster log


class EmbeddingParams(Config):
    model: str = Field(
        default=MINILM_CONFIG.model,
        description="'all-MiniLM-L6-v2' (sentence encoder), 'SmolLM2-135M-Instruct' (decoder LLM; "
        "`make models` prepares it), a local model folder, or a hub id.",
    )
    pooling: one_of(Pooling) = Field(  # type: ignore[valid-type]
        default=MINILM_CONFIG.pooling.value, description="'mean' or 'last' (last real token)."
    )
    bidirectional: bool = Field(
        default=MINILM_CONFIG.bidirectional,
        description="Decoders: True = LLM2Vec-style bidirectional attention, False = causal.",
    )
    batch_size: int = Field(default=MINILM_CONFIG.batch_size, description="Texts per forward pass.")
    max_length: int = Field(default=MINILM_CONFIG.max_length, description="Tokens kept per text.")
    template: str = Field(
        default="",
        description=f"Item-text template, one of {sorted(TEMPLATES)}; empty = the data set's own.",
    )


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def item_embeddings(
    context: AssetExecutionContext,
    config: EmbeddingParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    compute: ComputeResource,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """One L2-normalized vector per item with text; text-less items are listed, not embedded as empty strings."""
    settings = EmbedderConfig(**config.model_dump(exclude={"template"}))
    template = TEMPLATES[config.template or get_dataset(context.partition_key).text_template]

    def progress(done: int, total: int) -> None:
        if done == total or done // LOG_EVERY != (done - settings.batch_size) // LOG_EVERY:
            context.log.info(f"embedded {done:,} of {total:,} distinct texts")

    params = {"upstream": kcore_dataset.fingerprint, "template": template.identity, **asdict(settings)}
    with tracked_run(context, mlflow, "embeddings", params) as run, compute.executor() as executor:
        output = stage.embed(kcore_dataset, storage.output_path, settings, template, progress, executor)
        return publish(context, run, output)

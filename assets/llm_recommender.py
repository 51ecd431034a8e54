"""The LLM recommender's assets, beside TIGER and the decoder-only model in the retrieval group:

    dataset_splits, a Semantic-ID table (the family `tokenizer` names, or a pinned version), kcore_dataset (titles)
        -> llm_recommender_model -> llm_recommender_eval

A pretrained causal LM (SmolLM2-135M by default) gets the table's Semantic-ID tokens and LoRA adapters, trains on
every next-item target of a user in one pass (optionally titled prompts, optionally the two-phase text-to-item
alignment) with per-epoch metrics in MLflow, and is evaluated on every test user with the same trie-constrained
beam search and the same most-popular baseline as the other Semantic-ID recommenders.
"""

from dataclasses import replace

from dagster import AssetExecutionContext, Output, asset
from pydantic import Field

from assets.choices import one_of
from assets.families import TABLE_KEYS, chosen_table, table_metadata
from assets.ingest import dataset_partitions
from assets.publishing import publish, tracked_run
from assets.retrieval import GROUP, EvalParams, SIDModelParams, _epoch_logger, trained_table
from ops.caching import StageOutput
from ops.quantizers.config import config_to_dict
from ops.retrieval.llm_recommender import LLMRecommenderConfig
from ops.retrieval.llm_tokens import NewRows
from ops.retrieval.stage import evaluate_llm_recommender_stage, train_llm_recommender_stage
from resources import MlflowTracking, StorageResource

DEFAULTS = LLMRecommenderConfig()
LORA_ALPHA_PER_RANK = DEFAULTS.lora.alpha // DEFAULTS.lora.rank  # LC-Rec: alpha 32 at rank 8


class LLMRecommenderParams(SIDModelParams):
    """The LLM recommender's settings on top of those every Semantic-ID model has."""

    model: str = Field(
        default=DEFAULTS.model,
        description="Base causal LM: a local-cache name (SmolLM2-135M-Instruct), a model folder or a hub id.",
    )
    user_buckets: int = Field(
        default=DEFAULTS.sequence.user_buckets,
        description="Hashed user tokens added to the LLM's vocabulary (0 = none; the instruction opens the prompt).",
    )
    batch_size: int = Field(
        default=DEFAULTS.train.batch_size,
        description="User windows per AdamW step (each trains all its next-item targets: 5.6 on Beauty).",
    )
    eval_users: int = Field(
        default=DEFAULTS.train.eval_users,
        description="Seeded sample of validation users per epoch (0 = all); each is a prefill through the LLM.",
    )
    lora_rank: int = Field(
        default=DEFAULTS.lora.rank,
        description=f"LoRA rank on every linear layer but the head; alpha = {LORA_ALPHA_PER_RANK} x rank (LC-Rec).",
    )
    new_rows: one_of(NewRows) = Field(  # type: ignore[valid-type]
        default=DEFAULTS.new_rows.value,
        description="New tokens' first rows: 'mean' of the pretrained rows + noise, or 'codes': the tokenizer's "
        "code vectors (PCA + random rotation) around that mean.",
    )
    spread: float = Field(
        default=DEFAULTS.spread, description="New rows' spread around the mean, in pretrained rows' RMS deviations."
    )
    titles: bool = Field(
        default=DEFAULTS.prompt.titles, description="Each history item's title after its Semantic-ID tokens."
    )
    alignment: bool = Field(
        default=DEFAULTS.alignment,
        description="Phase 1 trains next-item and text-to-item alignment (title <-> Semantic ID) jointly, phase 2 "
        "next-item alone (LAMIA 4.2.4 after LC-Rec).",
    )
    alignment_share: float = Field(
        default=DEFAULTS.alignment_share, description="Phase 1's share of the budget and of max_epochs."
    )

    def recommender_settings(self) -> LLMRecommenderConfig:
        lora = replace(DEFAULTS.lora, rank=self.lora_rank, alpha=LORA_ALPHA_PER_RANK * self.lora_rank)
        return replace(
            self.settings(DEFAULTS),
            model=self.model,
            lora=lora,
            new_rows=NewRows(self.new_rows),
            spread=self.spread,
            prompt=replace(DEFAULTS.prompt, titles=self.titles),
            alignment=self.alignment,
            alignment_share=self.alignment_share,
        )


@asset(group_name=GROUP, partitions_def=dataset_partitions, deps=TABLE_KEYS)
def llm_recommender_model(
    context: AssetExecutionContext,
    config: LLMRecommenderParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    dataset_splits: StageOutput,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """A pretrained causal LM (SmolLM2-135M by default) with the table's Semantic-ID tokens added and LoRA adapters,
    trained on every next-item target of a user in one pass (loss on Semantic-ID tokens only), optionally with
    titles and the text-to-item alignment phase; early stopping on validation Recall@10, per-epoch metrics in
    MLflow."""
    settings = config.recommender_settings()
    table = chosen_table(context, storage.output_path, config)
    params = {"splits": dataset_splits.fingerprint, "semantic_ids": table.fingerprint, **config_to_dict(settings)}
    tokenizer = table.manifest["tokenizer"]["kind"]
    with tracked_run(context, mlflow, "llm_recommender_model", params, tokenizer=tokenizer) as run:
        output = train_llm_recommender_stage(
            storage.output_path, dataset_splits, table, settings, kcore_dataset, _epoch_logger(context, run)
        )
        return publish(context, run, output, metadata=table_metadata(table))


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def llm_recommender_eval(
    context: AssetExecutionContext,
    config: EvalParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    llm_recommender_model: StageOutput,
    dataset_splits: StageOutput,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """Recall/NDCG@5/10/20 of the LLM recommender over every test user with the cached trie-constrained beam search,
    beside the most-popular baseline; `invalid_items` (checked against the table) must be 0."""
    model = llm_recommender_model
    table = trained_table(storage, model)
    params = {"model": model.fingerprint, "semantic_ids": table.fingerprint, "beams": config.beams}
    items = kcore_dataset if model.manifest.get("items") else None
    with tracked_run(
        context, mlflow, "llm_recommender_eval", params, tokenizer=table.manifest["tokenizer"]["kind"]
    ) as run:
        output = evaluate_llm_recommender_stage(storage.output_path, model, dataset_splits, table, items, config.beams)
        return publish(context, run, output, metadata=table_metadata(table))

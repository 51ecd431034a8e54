"""The one `defs` of semid: every asset and its checks, the resources they use, the jobs, the re-indexing schedule
and the sensor that re-indexes a data set when its raw files change.

Open it in the UI with `make ui` (webserver and daemon on 127.0.0.1), or run the main job with `make run`.

Steps run in the run's own process (`in_process_executor`): a step of semid is one cached stage that already uses
every core, so a process per step bought no parallelism and cost a fresh import of torch, transformers and the
definitions at every step (a no-op re-run of the main job took minutes). Stage outputs are not pickled: the
`StageOutputIOManager` keeps a pointer to each version folder, which is the data.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    load_assets_from_modules,
    schedule,
)

from assets import (
    checks,
    ctr,
    embeddings,
    ingest,
    llm,
    llm_recommender,
    raw_files,
    reports,
    retrieval,
    semantic_ids,
    tokenizers,
)
from assets.families import FAMILIES, MAIN, TRAINED_HERE, Family, table_key, tokenizer_key
from ops.ingest.datasets import DEFAULT_DATASET
from pipelines.code_versions import with_code_versions
from resources import MlflowTracking, StorageResource
from resources.compute import ComputeResource
from resources.mlflow_tracking import default_artifact_root, default_tracking_uri
from resources.stage_io import StageOutputIOManager
from resources.storage import default_data_root, default_output_root

ALL_ASSETS = with_code_versions(
    [
        *load_assets_from_modules([raw_files, ingest, embeddings, ctr, retrieval, llm_recommender, llm, reports]),
        *tokenizers.TOKENIZER_ASSETS.values(),
        *semantic_ids.TABLE_ASSETS.values(),
    ]
)
STUDY = AssetSelection.assets(ctr.scaling_study)
REPORT = AssetSelection.assets(reports.report)
LLM_RECOMMENDER = AssetSelection.assets(llm_recommender.llm_recommender_model, llm_recommender.llm_recommender_eval)


def families(selected: tuple[Family, ...]) -> AssetSelection:
    """The tokenizer and Semantic-ID table assets of ``selected`` families."""
    return AssetSelection.assets(*(key(f.kind) for f in selected for key in (tokenizer_key, table_key)))


# Models downstream depend on every family's table, so a job that wants them must not take their `upstream()`
# (that would train every tokenizer and the LAMIA LLM): it takes the ingestion and the main families' tables.
WITH_MAIN_TABLES = AssetSelection.groups(ingest.GROUP) | families(MAIN).upstream()

ingest_job = define_asset_job(
    "ingest",
    selection=AssetSelection.groups(ingest.GROUP),
    partitions_def=ingest.dataset_partitions,
    description="Read one data set (the partition) into normalized tables, k-core it, and split it.",
)

main_job = define_asset_job(
    "main",
    selection=(AssetSelection.groups(ingest.GROUP, embeddings.GROUP, ctr.GROUP, reports.GROUP) | families(MAIN))
    - STUDY,
    partitions_def=ingest.dataset_partitions,
    description="Raw files -> the main tokenizer families' Semantic-ID tables (RQ-VAE) -> a CTR model with "
    "Semantic-ID features and its test AUC -> the report, for one data set (the partition). The other tokenizer "
    "families, generative retrieval, the scaling study and the LLM-adapted tokenizers are jobs of their own.",
)

OVERVIEW_FAMILIES = tuple(family for family in FAMILIES if family.kind in ("rqvae", "moc"))
overview_job = define_asset_job(
    "overview",
    selection=AssetSelection.groups(ingest.GROUP, embeddings.GROUP, reports.GROUP)
    | families(OVERVIEW_FAMILIES)
    | AssetSelection.assets(ctr.ctr_samples, ctr.scaling_study, retrieval.decoder_model, retrieval.decoder_eval),
    partitions_def=ingest.dataset_partitions,
    description="The first look at one data set (what `make run` runs, with presets/quick.yaml): RQ-VAE and "
    "Mixture-of-Codes tables side by side, both against the ID-only baseline in a DCNv2 study, the decoder-only "
    "recommender beside the most-popular baseline, and the report that says which tokenizer helped most.",
)

tokenizers_job = define_asset_job(
    "tokenizers",
    selection=AssetSelection.groups(ingest.GROUP) | families(TRAINED_HERE).upstream() | REPORT,
    partitions_def=ingest.dataset_partitions,
    description="Every tokenizer family trained on the item embeddings (RQ-VAE, MoC, ME, VQ-VAE, RQ-KMeans) and its "
    "Semantic-ID table, side by side, then the report comparing them. LAMIA's table is the llm job's.",
)

study_job = define_asset_job(
    "study",
    selection=STUDY.upstream() | REPORT,
    partitions_def=ingest.dataset_partitions,
    description="The Mixture-of-Codes scaling study (backbones x ME/RQ-VAE/MoC x 1-7x x fusion x seeds) on one data "
    "set: Table 1 and Table 2 of the paper, each run nested in MLflow.",
)

retrieval_job = define_asset_job(
    "retrieval",
    selection=(AssetSelection.groups(retrieval.GROUP) - LLM_RECOMMENDER) | WITH_MAIN_TABLES | REPORT,
    partitions_def=ingest.dataset_partitions,
    description="TIGER and the decoder-only recommender on the Semantic-ID table their `tokenizer` names (RQ-VAE "
    "unless set; another family's table must be materialized first), their beam-search "
    "evaluations beside the most-popular baseline, and SASRec.",
)


llm_job = define_asset_job(
    "llm",
    selection=(AssetSelection.groups(llm.GROUP) | AssetSelection.assets(llm.semantic_ids_lamia)).upstream(),
    partitions_def=ingest.dataset_partitions,
    description="A decoder LLM (SmolLM2 by default) adapted with LoRA: LLM2Vec (MNTP, SimCSE) and its embeddings, "
    "and LAMIA item palettes quantized into a Semantic-ID table, each under a wall-clock budget.",
)


llm_recommender_job = define_asset_job(
    "llm_recommender",
    selection=LLM_RECOMMENDER | WITH_MAIN_TABLES,
    partitions_def=ingest.dataset_partitions,
    description="The LLM as recommender: SmolLM2 (by default) with the Semantic-ID table's tokens and LoRA, optionally "
    "with titles and the text-to-item alignment phase, evaluated on every test user beside the most-popular list.",
)


@schedule(job=main_job, cron_schedule="0 3 * * 0", default_status=DefaultScheduleStatus.STOPPED)
def weekly_reindex(context: ScheduleEvaluationContext) -> RunRequest:
    """Re-run the main job on the default data set every Sunday 03:00; cached stages return at once."""
    return RunRequest(run_key=None, partition_key=DEFAULT_DATASET)


# Off by default like the schedule: when on, a data set whose raw files change gets a main run of its own.
reindex_on_new_data = raw_files.reindex_sensor(main_job.name)


def build_resources() -> dict[str, object]:
    """The real resources; tests build their own with temporary paths."""
    return {
        "storage": StorageResource(data_root=default_data_root(), output_root=default_output_root()),
        "mlflow": MlflowTracking(tracking_uri=default_tracking_uri(), artifact_root=default_artifact_root()),
        "io_manager": StageOutputIOManager(output_root=default_output_root()),
        "compute": ComputeResource(),
    }


defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=checks.ALL_CHECKS,
    jobs=[ingest_job, overview_job, main_job, tokenizers_job, study_job, retrieval_job, llm_job, llm_recommender_job],
    executor=in_process_executor,
    schedules=[weekly_reindex],
    sensors=[reindex_on_new_data],
    resources=build_resources(),
)

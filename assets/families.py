"""The tokenizer families the asset graph shows side by side: one declarative list, two asset keys per entry.

    item_embeddings -> tokenizer_<kind> -> semantic_ids_<kind>      every family trained on the item vectors
    lamia_palettes  ---------------------> semantic_ids_lamia      LAMIA: the llm job's palettes, quantized

Each table is its own asset, with its own lineage, materialization history, metadata and checks; its fingerprint is
its data version. Keys are flat (`tokenizer_moc`, not `["tokenizers", "moc"]`): a key's name is then also its op
name, so run config reads ``ops: {tokenizer_moc: {config: ...}}`` rather than ``ops: {tokenizers__moc: ...}``.

Models downstream (CTR, TIGER, the decoder-only and LLM recommenders) depend on every table, so the graph draws the
lineage of each, and read one: the family their config's ``tokenizer`` names (a launchpad enum), at the version of
its latest materialization for the run's data set, or a stored version pinned by ``semantic_ids_version``. One model
asset choosing among N tables keeps the graph at one node per stage; a model asset per table would multiply each
of them by the number of families (7 x 6 nodes) for combinations nobody asked for.

Adding a tokenizer is one entry below plus its ``ops/quantizers/<kind>.py``.
"""

from dataclasses import dataclass
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, Config, Failure
from pydantic import Field

from assets.choices import one_of
from assets.publishing import latest_fingerprint
from ops.caching import StageOutput, existing_version
from ops.semantic_ids.stage import STAGE as SEMANTIC_IDS_STAGE


@dataclass(frozen=True)
class Family:
    kind: str  # the quantizer's name in ops.quantizers.kinds.TOKENIZERS; the asset keys' suffix
    label: str  # what the UI says the family is
    main: bool = False  # built by the main job (each family there adds its training to every main run)
    from_palettes: bool = False  # the table is quantized from LAMIA palettes (llm job), not trained on item vectors


FAMILIES = (
    Family("rqvae", "RQ-VAE (TIGER): residual levels, each quantizing what the previous ones left", main=True),
    Family("moc", "Mixture-of-Codes: N parallel codebooks over one latent"),
    Family("me", "Multi-Embedding: one code, scaled by M embedding tables downstream"),
    Family("vqvae", "VQ-VAE: one code per item"),
    Family("rqkmeans", "RQ-KMeans: residual k-means on the item vectors, training-free"),
    Family("lamia", "LAMIA: per-aspect k-means of an LLM's item palettes", from_palettes=True),
)
DEFAULT_FAMILY = "rqvae"  # the table downstream models read unless their config names another
TRAINED_HERE = tuple(family for family in FAMILIES if not family.from_palettes)
MAIN = tuple(family for family in FAMILIES if family.main)


def tokenizer_key(kind: str) -> AssetKey:
    return AssetKey(f"tokenizer_{kind}")


def table_key(kind: str) -> AssetKey:
    return AssetKey(f"semantic_ids_{kind}")


TABLE_KEYS = tuple(table_key(family.kind) for family in FAMILIES)


class TableChoice(Config):
    """Which Semantic-ID table a model reads: a family's table asset, or a pinned stored version."""

    tokenizer: one_of(family.kind for family in FAMILIES) = Field(  # type: ignore[valid-type]
        default=DEFAULT_FAMILY,
        description="The Semantic-ID table asset to read: semantic_ids_<tokenizer>, at its latest materialization "
        "for this data set (materialize it first: the `tokenizers` job builds every family but LAMIA).",
    )
    semantic_ids_version: str = Field(
        default="",
        description="Fingerprint of a stored Semantic-ID table version (data/semantic_ids/<fingerprint>, any family) "
        "to read instead of the `tokenizer` table's latest; empty = the latest.",
    )


def chosen_table(context: AssetExecutionContext, output_root: Path, choice: TableChoice) -> StageOutput:
    """The table version ``choice`` names: the pinned one, else the latest materialization of its family's asset."""
    if choice.semantic_ids_version:
        return existing_version(output_root, SEMANTIC_IDS_STAGE, choice.semantic_ids_version)
    key = table_key(choice.tokenizer)
    version = latest_fingerprint(context, key)
    if version is None:
        partition = context.partition_key if context.has_partition_key else None
        raise Failure(
            f"{key.to_user_string()} has no version for data set {partition!r} yet: materialize it first (the "
            f"`tokenizers` job, or select it in the asset graph), or set `tokenizer` to a family that has one"
        )
    return existing_version(output_root, SEMANTIC_IDS_STAGE, version)


def table_metadata(table: StageOutput | None) -> dict[str, str]:
    """What a model's materialization says about the table it read: the table asset and the version."""
    if table is None:
        return {"semantic_ids_table": "none (ID features only)"}
    kind = table.manifest["tokenizer"]["kind"]
    return {"semantic_ids_table": table_key(kind).to_user_string(), "semantic_ids_version": table.fingerprint}

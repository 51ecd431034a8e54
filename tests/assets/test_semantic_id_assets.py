"""Embeddings -> tokenizer -> Semantic-ID table through Dagster on a small real catalogue (Gift Cards, 147 items in
its 5-core), one asset pair per tokenizer family, side by side."""

import gzip
import json
import shutil

import polars as pl
from dagster import AssetKey, DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from assets import checks, embeddings, ingest, semantic_ids, tokenizers
from assets.families import FAMILIES, TABLE_KEYS, table_key, tokenizer_key
from ops.ingest.datasets import get_dataset
from ops.quantizers.kinds import TOKENIZERS
from ops.semantic_ids.stage import read_table
from pipelines.definitions import defs
from resources import StorageResource

UPSTREAM = [ingest.normalized_dataset, ingest.kcore_dataset, embeddings.item_embeddings]
SMALL_TOKENIZER = {"scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64, "lr": 0.01}
PARTITION = "amazon2018-gift-cards"


def run(tmp_resources, instance, configs: dict[str, dict]):
    """Materialize the tables of the families in ``configs`` (family -> tokenizer config) in one run."""
    pairs = [asset[kind] for kind in configs for asset in (tokenizers.TOKENIZER_ASSETS, semantic_ids.TABLE_ASSETS)]
    return materialize(
        [*UPSTREAM, *pairs],
        resources=tmp_resources,
        partition_key=PARTITION,
        instance=instance,
        run_config={"ops": {f"tokenizer_{kind}": {"config": config} for kind, config in configs.items()}},
    )


def test_every_family_has_a_tokenizer_a_table_and_the_table_checks():
    graph = defs.get_repository_def().asset_graph
    assert {family.kind for family in FAMILIES} == set(TOKENIZERS), "one registry entry per quantizer kind"
    for family in FAMILIES:
        table = graph.get(table_key(family.kind))
        assert table.group_name == semantic_ids.GROUP
        if not family.from_palettes:
            assert tokenizer_key(family.kind) in table.parent_keys
    checked: dict[AssetKey, set[str]] = {}
    for definition in checks.ALL_CHECKS:
        for key in definition.check_keys:
            checked.setdefault(key.asset_key, set()).add(key.name)
    for key in TABLE_KEYS:
        assert checked[key] == {"unique_semantic_ids", "code_usage", "rows_match_embeddings"}, key
    for model in ("ctr_model", "tiger_model", "decoder_model", "llm_recommender_model", "report"):
        assert set(TABLE_KEYS) <= graph.get(AssetKey(model)).parent_keys, f"{model} does not show every table"


def test_semantic_id_table_is_complete_unique_and_cached(shared_data, tmp_resources):
    shared_data(PARTITION)
    instance = DagsterInstance.ephemeral()
    first = run(tmp_resources, instance, {"moc": SMALL_TOKENIZER})
    table_version = first.output_for_node("semantic_ids_moc")
    table = read_table(table_version)
    embedded = first.output_for_node("item_embeddings").manifest["items_embedded"]
    assert table.height == embedded == first.output_for_node("kcore_dataset").manifest["rows"]["items"]
    assert table["codes"].list.len().unique().to_list() == [2]  # MoC 2x: two codes per item
    assert table.select(pl.col("codes").cast(pl.List(pl.String)).list.join(" "), "collision_suffix").is_unique().all()
    manifest = table_version.manifest
    assert manifest["tokenizer"]["kind"] == "moc"
    assert manifest["embeddings"]["fingerprint"] == first.output_for_node("item_embeddings").fingerprint
    assert manifest["run"]["mlflow_run_id"]

    second = run(tmp_resources, instance, {"moc": SMALL_TOKENIZER})
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in second.get_asset_materialization_events()}
    assert events["tokenizer_moc"]["cache"].value == "cache hit"
    assert events["semantic_ids_moc"]["cache"].value == "cache hit"

    other_seed = run(tmp_resources, instance, {"moc": {**SMALL_TOKENIZER, "seed": 1}})
    assert other_seed.output_for_node("semantic_ids_moc").fingerprint != table_version.fingerprint
    assert read_table(table_version).equals(table), "the first version is immutable"


def test_families_side_by_side_each_with_its_own_history_and_mlflow_runs(shared_data, tmp_resources):
    shared_data(PARTITION)
    instance = DagsterInstance.ephemeral()
    fitted = {"scale": 2, "codebook_size": 16, "pca_dim": 8}
    result = run(tmp_resources, instance, {"rqvae": SMALL_TOKENIZER, "rqkmeans": fitted})
    kinds = {
        k: result.output_for_node(f"semantic_ids_{k}").manifest["tokenizer"]["kind"] for k in ("rqvae", "rqkmeans")
    }
    assert kinds == {"rqvae": "rqvae", "rqkmeans": "rqkmeans"}
    for kind in ("rqvae", "rqkmeans"):
        (event,) = instance.fetch_materializations(table_key(kind), limit=10).records
        metadata = event.asset_materialization.metadata
        assert event.asset_materialization.partition == PARTITION
        assert metadata["fingerprint"].value == result.output_for_node(f"semantic_ids_{kind}").fingerprint
        assert metadata["mlflow_run"].value.endswith("?workflowType=machine_learning")

    client = MlflowClient(tracking_uri=tmp_resources["mlflow"].tracking_uri)
    experiment = client.get_experiment_by_name("semid/tokenizer")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id], f"tags.dataset = '{PARTITION}' and tags.tokenizer = 'rqvae'")
    (trained,) = runs
    assert trained.info.run_name == f"tokenizer:rqvae:{PARTITION}" and trained.data.tags["stage"] == "tokenizer"
    assert {"tokenizer.pt", "history.json", "manifest.json"} <= {
        a.path for a in client.list_artifacts(trained.info.run_id)
    }
    curves = {"train/loss", "train/reconstruction_loss", "codebook_usage/level_1", "codebook_usage/level_2"}
    assert curves <= set(trained.data.metrics)
    assert [m.step for m in client.get_metric_history(trained.info.run_id, "train/loss")] == [1, 2, 3, 4, 5]
    tables = client.get_experiment_by_name("semid/semantic_ids").experiment_id
    assert len(client.search_runs([tables], f"tags.dataset = '{PARTITION}'")) == 2


def reviews_without(source, target, removed: set[str]) -> int:
    """Copy a gzipped JSON-lines review file without the reviews of ``removed`` items; the reviews dropped."""
    dropped = 0
    with gzip.open(source, "rt") as reader, gzip.open(target, "wt") as writer:
        for line in reader:
            if json.loads(line)["asin"] in removed:
                dropped += 1
            else:
                writer.write(line)
    return dropped


def test_new_items_are_embedded_and_encoded_alone_under_the_frozen_tokenizer(shared_data, tmp_path, tmp_resources):
    source = shared_data(PARTITION)
    spec = get_dataset(PARTITION)
    raw = tmp_path / "raw"
    files = spec.paths(raw)
    files["reviews"].parent.mkdir(parents=True)
    shutil.copy(source / files["meta"].name, files["meta"])
    with gzip.open(source / files["reviews"].name, "rt") as reviews:
        items = sorted({json.loads(line)["asin"] for line in reviews})
    removed = set(items[::15][:10])
    assert reviews_without(source / files["reviews"].name, files["reviews"], removed) > 0
    resources = {**tmp_resources, "storage": StorageResource(data_root=str(raw), output_root=str(tmp_path / "out"))}
    instance = DagsterInstance.ephemeral()

    def materialize_moc(**settings):
        result = run(resources, instance, {"moc": {**SMALL_TOKENIZER, **settings}})
        return result, {
            e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()
        }

    before, _ = materialize_moc()
    old_table = read_table(before.output_for_node("semantic_ids_moc"))
    shutil.copy(source / files["reviews"].name, files["reviews"])  # the 10 items come back as new
    after, events = materialize_moc()

    table_version = after.output_for_node("semantic_ids_moc")
    new_table = read_table(table_version)
    added = new_table.height - old_table.height
    assert added > 0 and set(new_table["item_id"]) - set(old_table["item_id"]) >= removed & set(new_table["item_id"])
    embeddings = after.output_for_node("item_embeddings").manifest
    assert embeddings["vectors_computed"] == added, "only the new items are embedded"
    assert after.output_for_node("tokenizer_moc").fingerprint == before.output_for_node("tokenizer_moc").fingerprint
    assert events["tokenizer_moc"]["cache"].value == "cache hit"
    assert (
        events["tokenizer_moc"]["trained_on_embeddings"].value == before.output_for_node("item_embeddings").fingerprint
    )
    assert table_version.manifest["n_new_items"] == added and table_version.manifest["version"] == 2
    assert (
        new_table.join(old_table, on="item_id")
        .filter(
            (pl.col("codes") != pl.col("codes_right"))
            | (pl.col("collision_suffix") != pl.col("collision_suffix_right"))
        )
        .is_empty()
    ), "every kept item keeps its Semantic ID"
    metadata = events["semantic_ids_moc"]
    assert metadata["compared_with"].value == before.output_for_node("semantic_ids_moc").fingerprint
    assert (metadata["items_added"].value, metadata["items_changed_semantic_id"].value) == (added, 0)
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == ["item_id", "codes", "collision_suffix"]

    retrained, events = materialize_moc(retrain=True)
    assert retrained.output_for_node("tokenizer_moc").fingerprint != before.output_for_node("tokenizer_moc").fingerprint
    fresh = retrained.output_for_node("semantic_ids_moc")
    assert (
        fresh.manifest["version"] == 1
        and events["semantic_ids_moc"]["compared_with"].value == table_version.fingerprint
    )
    moved = new_table.join(read_table(fresh), on="item_id").filter(
        (pl.col("codes") != pl.col("codes_right")) | (pl.col("collision_suffix") != pl.col("collision_suffix_right"))
    )
    assert events["semantic_ids_moc"]["items_changed_semantic_id"].value == moved.height

"""The LLM recommender's assets through Dagster on a small real catalogue (Gift Cards 5-core), with a tiny local
decoder: trained with titles and the alignment phase on the upstream Semantic-ID table, evaluated on every test
user beside the most-popular baseline, per-epoch metrics in MLflow."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from assets import embeddings, ingest, llm_recommender, semantic_ids, tokenizers
from tests.ops.llm.conftest import tiny_dirs  # noqa: F401 (the fixture: tiny local decoders)

ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    ingest.dataset_splits,
    embeddings.item_embeddings,
    tokenizers.TOKENIZER_ASSETS["rqvae"],
    semantic_ids.TABLE_ASSETS["rqvae"],
    llm_recommender.llm_recommender_model,
    llm_recommender.llm_recommender_eval,
]
SMALL_TOKENIZER = {"scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64, "lr": 0.01}


def test_llm_recommender_is_trained_and_evaluated_on_every_test_user(
    shared_data,
    tiny_dirs: dict[str, Path],  # noqa: F811
    tmp_resources,
) -> None:
    shared_data("amazon2018-gift-cards")
    model = {
        "model": str(tiny_dirs["llama"]),
        "lora_rank": 4,
        "batch_size": 16,
        "max_history": 5,
        "max_epochs": 2,
        "max_train_seconds": 60.0,
        "eval_users": 20,
        "titles": True,
        "alignment": True,
        "precision": "float32",
    }
    result = materialize(
        ASSETS,
        resources=tmp_resources,
        partition_key="amazon2018-gift-cards",
        instance=DagsterInstance.ephemeral(),
        run_config={
            "ops": {
                "tokenizer_rqvae": {"config": SMALL_TOKENIZER},
                "llm_recommender_model": {"config": model},
                "llm_recommender_eval": {"config": {"beams": 10}},
            }
        },
    )
    table = result.output_for_node("semantic_ids_rqvae")
    trained = result.output_for_node("llm_recommender_model").manifest
    evaluation = result.output_for_node("llm_recommender_eval").manifest
    users = result.output_for_node("dataset_splits").manifest["splits"]["leave_one_out"]["test"]
    assert trained["sid_table"]["fingerprint"] == evaluation["sid_table"]["fingerprint"] == table.fingerprint
    assert trained["items"] == result.output_for_node("kcore_dataset").fingerprint  # the titles' source
    assert trained["epochs"] == 2 and [phase["task"] for phase in trained["phases"]] == [
        "next_item+alignment",
        "next_item",
    ]
    assert trained["config"]["prompt"]["titles"] and trained["config"]["lora"] == {
        "rank": 4,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": [],
    }
    assert evaluation["n_users"] == users and evaluation["invalid_items"] == 0 and evaluation["users_short_of_k"] == 0
    assert 0.0 <= evaluation["test"]["recall@5"] <= evaluation["test"]["recall@10"] <= 1.0
    assert 0.0 < evaluation["most_popular"]["recall@10"] <= 1.0

    client = MlflowClient(tracking_uri=tmp_resources["mlflow"].tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("semid/llm_recommender_model").experiment_id], "")
    assert {1, 2} <= {m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}
    assert {1, 2} <= {m.step for m in client.get_metric_history(run.info.run_id, "valid/recall_10")}
    (run,) = client.search_runs([client.get_experiment_by_name("semid/llm_recommender_eval").experiment_id], "")
    assert "most_popular/recall_10" in client.get_run(run.info.run_id).data.metrics

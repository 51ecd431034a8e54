"""Retrieval assets through Dagster on a small real catalogue (Gift Cards 5-core): TIGER, its evaluation, SASRec."""

from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from assets import embeddings, ingest, retrieval, semantic_ids, tokenizers

ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    ingest.dataset_splits,
    embeddings.item_embeddings,
    tokenizers.tokenizer,
    semantic_ids.semantic_ids,
    retrieval.tiger_model,
    retrieval.retrieval_eval,
    retrieval.sasrec_model,
]
SMALL_TOKENIZER = {"kind": "rqvae", "scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64, "lr": 0.01}
SHORT = {"max_epochs": 2, "max_train_seconds": 60.0, "eval_users": 50}


def test_tiger_is_trained_evaluated_on_every_test_user_and_names_its_table(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    result = materialize(
        ASSETS,
        resources=tmp_resources,
        partition_key="amazon2018-gift-cards",
        instance=DagsterInstance.ephemeral(),
        run_config={
            "ops": {
                "tokenizer": {"config": SMALL_TOKENIZER},
                "tiger_model": {"config": {**SHORT, "batch_size": 64}},
                "retrieval_eval": {"config": {"beams": 10}},
                "sasrec_model": {"config": SHORT},
            }
        },
    )
    table = result.output_for_node("semantic_ids")
    model = result.output_for_node("tiger_model").manifest
    evaluation = result.output_for_node("retrieval_eval").manifest
    users = result.output_for_node("dataset_splits").manifest["splits"]["leave_one_out"]["test"]
    assert model["sid_table"]["fingerprint"] == evaluation["sid_table"]["fingerprint"] == table.fingerprint
    assert model["epochs"] == 2
    assert evaluation["n_users"] == users and evaluation["invalid_items"] == 0
    assert 0.0 <= evaluation["test"]["recall@5"] <= evaluation["test"]["recall@10"] <= 1.0
    sasrec = result.output_for_node("sasrec_model").manifest
    assert sasrec["n_test_users"] == users and 0.0 <= sasrec["test"]["ndcg@10"] <= sasrec["test"]["recall@10"]

    client = MlflowClient(tracking_uri=tmp_resources["mlflow"].tracking_uri)
    experiment = client.get_experiment_by_name("semid").experiment_id
    (run,) = client.search_runs([experiment], "tags.stage = 'tiger_model'")
    assert {1, 2} <= {m.step for m in client.get_metric_history(run.info.run_id, "train_loss")}

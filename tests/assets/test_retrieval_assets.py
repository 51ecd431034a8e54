"""Retrieval assets through Dagster on a small real catalogue (Gift Cards 5-core): TIGER and the decoder-only model,
their evaluations beside the most-popular baseline, SASRec."""

from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from assets import embeddings, ingest, retrieval, semantic_ids, tokenizers

ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    ingest.dataset_splits,
    embeddings.item_embeddings,
    tokenizers.TOKENIZER_ASSETS["rqvae"],
    semantic_ids.TABLE_ASSETS["rqvae"],
    retrieval.tiger_model,
    retrieval.retrieval_eval,
    retrieval.decoder_model,
    retrieval.decoder_eval,
    retrieval.sasrec_model,
]
SMALL_TOKENIZER = {"scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64, "lr": 0.01}
SHORT = {"max_epochs": 2, "max_train_seconds": 60.0, "eval_users": 50}


def test_sid_models_are_trained_evaluated_on_every_test_user_and_name_their_table(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    result = materialize(
        ASSETS,
        resources=tmp_resources,
        partition_key="amazon2018-gift-cards",
        instance=DagsterInstance.ephemeral(),
        run_config={
            "ops": {
                "tokenizer_rqvae": {"config": SMALL_TOKENIZER},
                "tiger_model": {"config": {**SHORT, "batch_size": 64}},
                "retrieval_eval": {"config": {"beams": 10}},
                "decoder_model": {
                    "config": {**SHORT, "batch_size": 16, "level_embedding": True, "init_from_codes": True}
                },
                "decoder_eval": {"config": {"beams": 10}},
                "sasrec_model": {"config": SHORT},
            }
        },
    )
    table = result.output_for_node("semantic_ids_rqvae")
    model = result.output_for_node("tiger_model").manifest
    evaluation = result.output_for_node("retrieval_eval").manifest
    users = result.output_for_node("dataset_splits").manifest["splits"]["leave_one_out"]["test"]
    assert model["sid_table"]["fingerprint"] == evaluation["sid_table"]["fingerprint"] == table.fingerprint
    assert model["epochs"] == 2
    assert evaluation["n_users"] == users and evaluation["invalid_items"] == 0
    assert 0.0 <= evaluation["test"]["recall@5"] <= evaluation["test"]["recall@10"] <= 1.0
    decoder = result.output_for_node("decoder_model").manifest
    decoded = result.output_for_node("decoder_eval").manifest
    assert decoder["sid_table"]["fingerprint"] == decoded["sid_table"]["fingerprint"] == table.fingerprint
    assert decoder["epochs"] == 2 and decoder["train_samples_per_s"] > 0
    assert decoder["config"]["level_embedding"] and decoder["config"]["init_from_codes"]  # the RQ-VAE's codebooks
    assert decoded["n_users"] == users and decoded["invalid_items"] == 0 and decoded["users_short_of_k"] == 0
    assert decoded["most_popular"] == evaluation["most_popular"]  # same users, same train counts
    assert 0.0 < decoded["most_popular"]["recall@10"] <= decoded["most_popular"]["recall@20"] <= 1.0
    sasrec = result.output_for_node("sasrec_model").manifest
    assert sasrec["n_test_users"] == users and 0.0 <= sasrec["test"]["ndcg@10"] <= sasrec["test"]["recall@10"]

    client = MlflowClient(tracking_uri=tmp_resources["mlflow"].tracking_uri)
    for stage, model_file in (("tiger_model", "tiger.pt"), ("decoder_model", "decoder.pt")):
        (run,) = client.search_runs([client.get_experiment_by_name(f"semid/{stage}").experiment_id], "")
        assert run.data.tags["tokenizer"] == "rqvae"
        assert {1, 2} <= {m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}
        assert {1, 2} <= {m.step for m in client.get_metric_history(run.info.run_id, "valid/recall_10")}
        assert model_file in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    (run,) = client.search_runs([client.get_experiment_by_name("semid/decoder_eval").experiment_id], "")
    assert "most_popular/recall_10" in client.get_run(run.info.run_id).data.metrics

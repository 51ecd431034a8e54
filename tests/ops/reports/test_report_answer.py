"""The one-paragraph answer follows the numbers: swap them and it names the other winner."""

from __future__ import annotations

import polars as pl
import pytest

from ops.reports.answer import answer, ctr_verdict, retrieval_verdict
from ops.reports.results import ID_BASED, POPULAR, RETRIEVAL_SCHEMA, SEMANTIC


def ctr(rows: list[tuple[str, str, float]], std: float | None = None) -> pl.DataFrame:
    """A `ctr_summary` frame from (backbone, candidate, mean test AUC)."""
    return pl.DataFrame(
        {
            "backbone": [b for b, _, _ in rows],
            "candidate": [c for _, c, _ in rows],
            "runs": [3] * len(rows),
            "test_auc": [a for _, _, a in rows],
            "test_auc_std": [std] * len(rows),
            "test_logloss": [0.5] * len(rows),
        },
        schema_overrides={"runs": pl.UInt32, "test_auc_std": pl.Float64},
    )


def retrieval(rows: list[tuple[str, str, str, float]], stopped: str = "patience") -> pl.DataFrame:
    """A `retrieval_table` frame from (model, tokenizer, family, Recall@10)."""
    records = [
        {
            "model": model,
            "tokenizer": tokenizer,
            "family": family,
            **{metric: recall * 0.5 for metric in RETRIEVAL_SCHEMA if "@" in metric},
            "recall@10": recall,
            "users": 100,
            "epochs": 3,
            "stopped": stopped,
            "version": "",
        }
        for model, tokenizer, family, recall in rows
    ]
    return pl.DataFrame(records, schema=RETRIEVAL_SCHEMA)


NO_RETRIEVAL = retrieval([])


@pytest.mark.parametrize(("rq", "moc", "winner"), [(0.801, 0.799, "RQ-VAE 3x256"), (0.799, 0.801, "MoC 3x256")])
def test_the_ctr_winner_follows_the_higher_auc(rq, moc, winner):
    summary = ctr([("deepfm", "ID only", 0.790), ("deepfm", "RQ-VAE 3x256", rq), ("deepfm", "MoC 3x256", moc)])
    text = answer(summary, NO_RETRIEVAL)
    assert f"{winner} has the highest test AUC, 0.8010, +0.0110 over ID only (0.7900)" in text
    assert f"Which tokenizer helps most here: {winner} for CTR" in text


def test_id_only_winning_ctr_is_said_plainly():
    verdict = ctr_verdict(ctr([("dcnv2", "ID only", 0.80), ("dcnv2", "MoC 3x256 + fusion", 0.79)]))
    assert verdict.winner is None
    assert "ID only wins: test AUC 0.8000 against 0.7900" in verdict.sentence
    assert "Semantic IDs do not help CTR here" in verdict.sentence


def test_a_margin_inside_the_seed_spread_is_flagged():
    summary = ctr([("deepfm", "ID only", 0.7900), ("deepfm", "RQ-VAE 3x256", 0.7905)], std=0.004)
    assert "+0.0005 over ID only (0.7900), within the seed-to-seed spread (std 0.0040)" in ctr_verdict(summary).sentence
    tables = ctr([("deepfm", "MoC 3x256", 0.7950), ("deepfm", "RQ-VAE 3x256", 0.7905)], std=0.004)
    assert "+0.0045 over the next table, RQ-VAE 3x256 (0.7905)." in ctr_verdict(tables).sentence
    close = ctr([("deepfm", "MoC 3x256", 0.7930), ("deepfm", "RQ-VAE 3x256", 0.7905)], std=0.004)
    assert "(0.7905), within the seed-to-seed spread (std 0.0040)" in ctr_verdict(close).sentence


def test_candidates_are_compared_on_the_backbones_they_share():
    summary = ctr(
        [
            ("deepfm", "ID only", 0.70),
            ("dcnv2", "ID only", 0.72),
            ("deepfm", "MoC 3x256", 0.71),
            ("dcnv2", "MoC 3x256", 0.74),
            ("deepfm", "RQ-VAE 3x256", 0.90),  # only one backbone: not in the overall comparison
        ]
    )
    sentence = ctr_verdict(summary).sentence
    assert sentence.startswith("On CTR (dcnv2, deepfm; 12 runs), MoC 3x256 has the highest test AUC, 0.7250")
    assert "best table on 2 of 2 backbones" in sentence
    assert sentence.endswith("(RQ-VAE 3x256: not compared, trained on other backbones).")


def test_retrieval_names_the_best_tokenizer_and_the_id_based_winner():
    rows = [
        ("Most popular", "-", POPULAR, 0.011),
        ("SASRec", "-", ID_BASED, 0.059),
        ("TIGER", "MoC 3x256", SEMANTIC, 0.027),
        ("TIGER", "RQ-VAE 3x256", SEMANTIC, 0.0218),
    ]
    verdict = retrieval_verdict(retrieval(rows, stopped="budget"))
    assert verdict.sentence.startswith("On retrieval, TIGER with MoC 3x256 reaches Recall@10 0.0270")
    assert "+0.0052, +24% over RQ-VAE 3x256 (0.0218)" in verdict.sentence
    assert "the ID-only SASRec is higher still (0.0590" in verdict.sentence
    assert "ID-based retrieval wins" in verdict.sentence and "stopped at its time budget" in verdict.sentence
    assert verdict.winner is None

    assert "even most popular" not in verdict.sentence
    below_popular = retrieval_verdict(retrieval([("Most popular", "-", POPULAR, 0.03), *rows[1:]]))
    assert (
        "ID-based retrieval wins on this data set, and even most popular (0.0300) beats every" in below_popular.sentence
    )

    without_sasrec = retrieval_verdict(retrieval([rows[0], rows[2], rows[3]]))
    assert without_sasrec.winner == "MoC 3x256" and "ahead of most popular (0.0110)" in without_sasrec.sentence


def test_most_popular_beating_every_tokenizer_is_said_plainly():
    rows = [("Most popular", "-", POPULAR, 0.03), ("TIGER", "RQ-VAE 3x256", SEMANTIC, 0.02)]
    verdict = retrieval_verdict(retrieval(rows))
    assert verdict.winner is None and "most popular is as good or better (0.0300)" in verdict.sentence


def test_no_results_yet():
    text = answer(ctr([]).clear(), retrieval([("Most popular", "-", POPULAR, 0.011)]))
    assert "There is no CTR result for this data set yet" in text
    assert "There is no Semantic-ID retrieval result yet" in text and "most popular reaches Recall@10 0.0110" in text
    assert text.endswith("Which tokenizer helps most here: none yet (no CTR result yet; no retrieval result yet).")


def test_one_table_winning_both_tasks_is_named_once():
    summary = ctr([("deepfm", "ID only", 0.79), ("deepfm", "MoC 3x256 + fusion", 0.80)])
    rows = [("Most popular", "-", POPULAR, 0.01), ("TIGER", "MoC 3x256", SEMANTIC, 0.03)]
    assert answer(summary, retrieval(rows)).endswith(
        "Which tokenizer helps most here: MoC 3x256, on both CTR and retrieval."
    )

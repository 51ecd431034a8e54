"""The report stage on hand-made stage versions: what it reads, what it caches, and an answer that follows them."""

from __future__ import annotations

import json

import pytest

from ops.reports.stage import HTML, MARKDOWN, ReportConfig, report_stage
from ops.retrieval.stage import most_popular_stage
from ops.semantic_ids.changes import compare_versions
from tests.ops.reports.conftest import ITEMS, USERS, HandMade, handmade_dataset


def render(made: HandMade):
    return report_stage(made.root, made.kcore, made.splits, made.embeddings, ReportConfig.test())


@pytest.mark.parametrize(
    ("rq", "moc", "winner", "other"), [(0.71, 0.69, "RQ-VAE", "MoC"), (0.69, 0.71, "MoC", "RQ-VAE")]
)
def test_the_answer_names_the_table_with_the_higher_auc(tmp_path, rq, moc, winner, other):
    made = handmade_dataset(tmp_path)
    tables = {"RQ-VAE": made.table("rqvae", 2), "MoC": made.table("moc", 2)}
    made.ctr(None, 0.65)
    made.ctr(tables["RQ-VAE"], rq)
    made.ctr(tables["MoC"], moc)
    text = render(made).manifest["answer"]
    assert f"{winner} 2x4 has the highest test AUC, 0.7100, +0.0600 over ID only (0.6500)" in text
    assert f"over the next table, {other} 2x4 (0.6900)" in text
    assert f"Which tokenizer helps most here: {winner} 2x4 for CTR" in text


def test_reads_only_the_versions_of_this_data_set(handmade):
    made = handmade
    mine = made.table("rqvae", 2)
    other_data = handmade_dataset(made.root, "elsewhere")  # another k-core, splits and embeddings
    foreign_table = made.table("moc", 2, embeddings=other_data.embeddings)
    ctr = made.ctr(mine, 0.7)
    made.ctr(None, 0.6, samples=made.samples(kcore=other_data.kcore))  # trained on another data set's samples
    made.ctr(foreign_table, 0.9)  # reads a table of other embeddings
    tiger = made.sid_model(mine, 0.2)
    decoder = made.sid_model(mine, 0.22, model="decoder")
    made.sid_model(mine, 0.5, splits=other_data.splits)  # a model trained on another split
    sasrec = made.sasrec(0.3, splits=made.splits.fingerprint)
    made.sasrec(0.9, splits=other_data.splits.fingerprint)
    by_counts = made.sasrec(0.25, n_items=len(ITEMS), n_test_users=len(USERS))  # an older manifest: no splits
    made.sasrec(0.8, n_items=len(ITEMS) + 1, n_test_users=len(USERS))

    output = render(made)
    sources = output.manifest["sources"]
    assert sources["semantic_ids"] == [mine.fingerprint]
    assert sources["ctr_model"] == [ctr.fingerprint]
    assert sources["sid_evals"] == [f"tiger_eval/{tiger.fingerprint}", f"decoder_eval/{decoder.fingerprint}"]
    assert sorted(sources["sasrec"]) == sorted([sasrec.fingerprint, by_counts.fingerprint])
    popular = most_popular_stage(made.root, made.splits)  # the baseline the report built: a cache hit now
    assert popular.cache_hit and sources["most_popular"] == popular.fingerprint
    retrieval = output.manifest["retrieval"]
    sasrec_rows = {f"SASRec ({fp[:6]})" for fp in (sasrec.fingerprint, by_counts.fingerprint)}
    assert set(retrieval) == {"Most popular", "TIGER RQ-VAE 2x4", "Decoder RQ-VAE 2x4", *sasrec_rows}
    assert retrieval["TIGER RQ-VAE 2x4"]["recall@10"] == 0.2
    assert retrieval["Most popular"] == {
        metric: popular.manifest["test"][metric] for metric in retrieval["Most popular"]
    }
    answer = output.manifest["answer"]
    assert "On retrieval, Decoder with RQ-VAE 2x4 reaches Recall@10 0.2200" in answer
    assert "the ID-only SASRec is higher still (0.3000" in answer and "stopped at its time budget" in answer
    assert "matched by catalogue size and test users" in output.file(MARKDOWN).read_text()


def test_same_inputs_hit_the_cache_and_a_new_result_makes_a_new_version(handmade):
    made = handmade
    table = made.table("rqvae", 2)
    first = render(made)
    assert not first.cache_hit and render(made).cache_hit
    assert "There is no CTR result for this data set yet" in first.manifest["answer"]
    made.ctr(table, 0.7)
    second = render(made)
    assert second.fingerprint != first.fingerprint and not second.cache_hit
    assert (
        "RQ-VAE 2x4 has the highest test AUC, 0.7000, with no ID-only run to compare against"
        in (second.manifest["answer"])
    )
    assert (first.file(HTML)).is_file(), "the first version is kept"


def test_files_and_figures_of_a_report_without_tokenizer_vectors(handmade):
    made = handmade
    made.table("rqvae", 3)
    made.table("moc", 3)
    output = render(made)
    manifest = output.manifest
    # hand-made tables name no stored tokenizer: code diagnostics only, and the report says why
    assert "usage.png" in manifest["files"] and "collisions.png" in manifest["files"] and "nmi.png" in manifest["files"]
    assert "spectrum.png" not in manifest["files"] and "correlation.png" not in manifest["files"]
    assert manifest["main_figure"] == "downstream.png"  # the most-popular row alone is a downstream result
    markdown = output.file(MARKDOWN).read_text()
    assert "is no longer under" in markdown and "![Collisions](collisions.png)" in markdown
    for name in manifest["files"]:
        assert output.file(name).stat().st_size > 0
    assert json.loads(output.file("manifest.json").read_text())["answer"] == manifest["answer"]


def test_stability_section_counts_the_ids_that_moved_at_each_reindexing(handmade):
    made = handmade
    before, after = made.table("rqvae", 2, seed=0), made.table("rqvae", 2, seed=1)  # a retrained table
    assert "Semantic-ID stability" not in render(made).file(MARKDOWN).read_text(), "nothing re-indexed yet"
    changes = compare_versions(made.root, before, after).manifest
    elsewhere = handmade_dataset(made.root, "elsewhere")
    foreign = made.table("rqvae", 2, seed=2, embeddings=elsewhere.embeddings)
    compare_versions(made.root, before, foreign)  # ends at another data set's table: not this report's

    output = render(made)
    assert output.manifest["sources"]["semantic_id_changes"] == [compare_versions(made.root, before, after).fingerprint]
    (row,) = output.manifest["stability"]
    moved = changes["items_changed_semantic_id"]
    assert 0 < moved <= len(ITEMS) and row["IDs changed"] == moved
    assert row["since"] == before.fingerprint and row["table"] == f"RQ-VAE 2x4 ({after.fingerprint[:6]})"
    assert row["tokenizer"] == "frozen"  # hand-made tables name the same (missing) tokenizer
    assert (row["items kept"], row["added"], row["removed"]) == (len(ITEMS), 0, 0)
    markdown = output.file(MARKDOWN).read_text()
    assert "## Semantic-ID stability" in markdown and f"| {moved} |" in markdown

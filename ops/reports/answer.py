"""The one-paragraph answer to "which tokenizer helps most here", written from the numbers alone.

CTR is judged on test AUC averaged over seeds and over the backbones every compared candidate was trained
with; retrieval on test Recall@10 (NDCG@10 quoted beside it). The paragraph names the winner on each task and
its margin over ID only, over the next tokenizer and over the baselines, and says plainly when ID only, SASRec
or most popular wins, when a margin is inside the seed-to-seed spread, when a model stopped at its time budget,
and when a task has no result yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ops.reports.results import ID_BASED, POPULAR, SEMANTIC

ID_ONLY_NAME = "ID only"
FUSION_SUFFIX = " + fusion"
PRIMARY = "recall@10"  # the retrieval metric the answer ranks by
SECONDARY = "ndcg@10"  # quoted beside it


@dataclass(frozen=True)
class Verdict:
    sentence: str
    winner: str | None  # a tokenizer's name when one wins the task; else None
    loser_reason: str  # when no tokenizer wins: what does ("ID only wins", "no result yet", ...)


def answer(ctr: pl.DataFrame, retrieval: pl.DataFrame) -> str:
    """The paragraph, from `results.ctr_summary` and `results.retrieval_table` frames."""
    on_ctr, on_retrieval = ctr_verdict(ctr), retrieval_verdict(retrieval)
    return " ".join([on_ctr.sentence, on_retrieval.sentence, _conclusion(on_ctr, on_retrieval)])


def ctr_verdict(summary: pl.DataFrame) -> Verdict:
    """Best candidate on mean test AUC over the backbone set that compares the most results."""
    if summary.is_empty():
        return Verdict(
            "There is no CTR result for this data set yet (materialize `ctr_model` with and without Semantic IDs, "
            "or the scaling study).",
            None,
            "no CTR result yet",
        )
    backbones = _compared_backbones(summary)
    per_candidate = (
        summary.filter(pl.col("backbone").is_in(sorted(backbones)))
        .group_by("candidate")
        .agg(
            pl.col("test_auc").mean().alias("auc"),
            pl.col("test_auc_std").mean().alias("std"),
            pl.col("runs").sum().alias("runs"),
            pl.len().alias("backbones"),
        )
        .filter(pl.col("backbones") == len(backbones))
        .sort("auc", "candidate", descending=[True, False])
    )
    scope = f"On CTR ({', '.join(sorted(backbones))}; {per_candidate['runs'].sum()} runs)"
    left_out = sorted(set(summary["candidate"].to_list()) - set(per_candidate["candidate"].to_list()))
    auc = dict(zip(per_candidate["candidate"], per_candidate["auc"], strict=True))
    spread = dict(zip(per_candidate["candidate"], per_candidate["std"], strict=True))
    tables = [name for name in per_candidate["candidate"] if name != ID_ONLY_NAME]
    if not tables:
        return Verdict(
            f"{scope}, only ID-only models exist (test AUC {auc[ID_ONLY_NAME]:.4f}); no Semantic-ID table has a CTR "
            "result yet.",
            None,
            "no Semantic-ID CTR result yet",
        )
    best = tables[0]
    baseline = auc.get(ID_ONLY_NAME)
    if baseline is not None and baseline >= auc[best]:
        return Verdict(
            f"{scope}, ID only wins: test AUC {baseline:.4f} against {auc[best]:.4f} for the best Semantic-ID "
            f"table, {best} ({auc[best] - baseline:+.4f}); Semantic IDs do not help CTR here.",
            None,
            "ID only wins CTR",
        )
    parts = [f"{scope}, {best} has the highest test AUC, {auc[best]:.4f}"]
    if baseline is None:
        parts.append(", with no ID-only run to compare against")
    else:
        parts.append(f", {auc[best] - baseline:+.4f} over ID only ({baseline:.4f})")
        noise = max(spread.get(best) or 0.0, spread.get(ID_ONLY_NAME) or 0.0)
        if auc[best] - baseline < noise:
            parts.append(f", within the seed-to-seed spread (std {noise:.4f})")
    if len(tables) > 1:
        second = tables[1]
        parts.append(f", and {auc[best] - auc[second]:+.4f} over the next table, {second} ({auc[second]:.4f})")
        noise = max(spread.get(best) or 0.0, spread.get(second) or 0.0)
        if auc[best] - auc[second] < noise:
            parts.append(f", within the seed-to-seed spread (std {noise:.4f})")
    if len(backbones) > 1:
        wins = _wins_per_backbone(summary.filter(pl.col("candidate").is_in(tables)), best, backbones)
        parts.append(f"; it is the best table on {wins} of {len(backbones)} backbones")
    if left_out:
        parts.append(f" ({', '.join(left_out)}: not compared, trained on other backbones)")
    return Verdict("".join(parts) + ".", best, "")


def retrieval_verdict(table: pl.DataFrame) -> Verdict:
    """Best Semantic-ID model (TIGER, decoder-only) on test Recall@10, against the ID-only SASRec and most popular."""
    popular = _best(table, POPULAR)
    sasrec = _best(table, ID_BASED)
    semantic = table.filter(pl.col("family") == SEMANTIC).sort(PRIMARY, "tokenizer", descending=[True, False])
    if semantic.is_empty():
        reference = []
        if sasrec is not None:
            reference.append(f"the ID-only SASRec reaches Recall@10 {sasrec[PRIMARY]:.4f}")
        if popular is not None:
            reference.append(f"most popular reaches Recall@10 {popular[PRIMARY]:.4f}")
        known = f"; {' and '.join(reference)}" if reference else ""
        return Verdict(
            "There is no Semantic-ID retrieval result yet (materialize a Semantic-ID recommender and its "
            f"evaluation, e.g. `tiger_model` and `retrieval_eval`){known}.",
            None,
            "no retrieval result yet",
        )
    best = semantic.row(0, named=True)
    headline = f"{best['model']} with {best['tokenizer']} reaches Recall@10 {best[PRIMARY]:.4f} (NDCG@10 {best[SECONDARY]:.4f})"
    parts = [f"On retrieval, {headline}"]
    others = semantic.filter(pl.col("tokenizer") != best["tokenizer"])
    if not others.is_empty():
        second = others.row(0, named=True)
        model = "" if second["model"] == best["model"] else f" with {second['model']}"
        parts.append(
            f", {_margin(best[PRIMARY], second[PRIMARY])} over {second['tokenizer']}{model} ({second[PRIMARY]:.4f})"
        )
    winner, reason = best["tokenizer"], ""
    popular_wins = popular is not None and popular[PRIMARY] >= best[PRIMARY]
    if sasrec is not None and sasrec[PRIMARY] > best[PRIMARY]:
        parts.append(
            f"; but the ID-only SASRec is higher still ({sasrec[PRIMARY]:.4f}, "
            f"{_margin(sasrec[PRIMARY], best[PRIMARY])}), so ID-based retrieval wins on this data set"
        )
        if popular_wins:
            parts.append(f", and even most popular ({popular[PRIMARY]:.4f}) beats every Semantic-ID model")
        winner, reason = None, "SASRec, ID only, wins retrieval"
    elif popular_wins:
        parts.append(
            f"; but most popular is as good or better ({popular[PRIMARY]:.4f}), so no tokenizer helps retrieval yet"
        )
        winner, reason = None, "most popular wins retrieval"
    else:
        beaten = [
            f"{name} ({row[PRIMARY]:.4f})" for name, row in (("SASRec", sasrec), ("most popular", popular)) if row
        ]
        if beaten:
            parts.append(f", ahead of {' and '.join(beaten)}")
    if "budget" in semantic["stopped"].to_list():
        parts.append(" (a Semantic-ID model stopped at its time budget, so it may be under-trained)")
    return Verdict("".join(parts) + ".", winner, reason)


def _conclusion(on_ctr: Verdict, on_retrieval: Verdict) -> str:
    if on_ctr.winner is None and on_retrieval.winner is None:
        return f"Which tokenizer helps most here: none yet ({on_ctr.loser_reason}; {on_retrieval.loser_reason})."
    ctr_table = on_ctr.winner.removesuffix(FUSION_SUFFIX) if on_ctr.winner else None
    if ctr_table is not None and ctr_table == on_retrieval.winner:
        return f"Which tokenizer helps most here: {ctr_table}, on both CTR and retrieval."
    ctr_part = f"{on_ctr.winner} for CTR" if on_ctr.winner else f"none for CTR ({on_ctr.loser_reason})"
    retrieval_part = (
        f"{on_retrieval.winner} for retrieval"
        if on_retrieval.winner
        else f"none for retrieval ({on_retrieval.loser_reason})"
    )
    return f"Which tokenizer helps most here: {ctr_part}; {retrieval_part}."


def _compared_backbones(summary: pl.DataFrame) -> frozenset[str]:
    """The backbone set that compares the most (candidate, backbone) results: a set shared by more candidates
    wins over a larger one only when it compares more results (ties: the larger set, then by name)."""
    sets = [frozenset(group["backbone"].to_list()) for _, group in summary.group_by("candidate")]
    compared = {option: sum(option <= other for other in sets) * len(option) for option in set(sets)}
    return max(compared, key=lambda option: (compared[option], len(option), sorted(option)))


def _wins_per_backbone(tables: pl.DataFrame, best: str, backbones: frozenset[str]) -> int:
    """On how many backbones ``best`` has the highest AUC among the compared tables."""
    wins = 0
    for backbone in backbones:
        rows = tables.filter(pl.col("backbone") == backbone).sort("test_auc", descending=True)
        wins += rows["candidate"][0] == best
    return wins


def _best(table: pl.DataFrame, family: str) -> dict | None:
    rows = table.filter(pl.col("family") == family).sort(PRIMARY, descending=True)
    return None if rows.is_empty() else rows.row(0, named=True)


def _margin(value: float, reference: float) -> str:
    """'+0.0052, +24%': absolute, and relative where the reference is not 0."""
    relative = f", {(value - reference) / reference:+.0%}" if reference > 0 else ""
    return f"{value - reference:+.4f}{relative}"

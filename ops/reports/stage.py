"""The report stage: one data set's tables, CTR and retrieval results -> PNGs, report.md, report.html, cached.

The version hashes the fingerprints of every stage version the report read (found by `sources.find_sources`),
its config and its code, so a new table, CTR run or evaluation makes a new report version, and re-running with
nothing new is a cache hit. The folder holds the figures (``*.png``), ``report.md`` (figures linked beside it),
``report.html`` (figures inlined: opens on its own), ``summary.md`` (the answer and the main tables, for the
Dagster UI) and the manifest (the answer, the versions read and the headline numbers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.diagnostics.nmi import kmeans_nmi
from ops.embeddings.stage import read_embeddings
from ops.reports import plots
from ops.reports.answer import answer
from ops.reports.diagnostics import (
    Labels,
    TableDiagnostics,
    category_labels,
    codebook_vectors,
    diagnose,
    summary_frame,
)
from ops.reports.documents import Document, Section, markdown_table, to_html, to_markdown
from ops.reports.results import METRICS, ctr_runs, ctr_summary, retrieval_table, scaling_tables, stability_table
from ops.reports.sources import ReportSources, TableSource, find_sources
from ops.retrieval.stage import most_popular_stage
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes
from ops.tables import read_parquet, write_atomic, write_text_atomic

REPORTS_CODE = Path(__file__).resolve().parent
OPS = REPORTS_CODE.parent
STAGE = "report"
MARKDOWN = "report.md"
HTML = "report.html"
SUMMARY = "summary.md"
MAIN_FIGURES = ("downstream.png", "usage.png")  # the report's main image: the first one that exists


@dataclass(frozen=True)
class ReportConfig:
    cluster_counts: tuple[int, ...] = (10, 25, 50, 100, 200)  # K-Means clusters of the NMI curve (paper Fig. 2b/3b)
    seed: int = 0  # K-Means seed

    def __post_init__(self) -> None:
        object.__setattr__(self, "cluster_counts", tuple(sorted(set(self.cluster_counts))))
        if not self.cluster_counts or min(self.cluster_counts) < 2:
            raise ValueError(f"cluster_counts must be >= 2, got {self.cluster_counts}")

    @classmethod
    def test(cls) -> ReportConfig:
        return cls(cluster_counts=(2, 4, 8))


def report_stage(
    output_root: Path,
    kcore: StageOutput,
    splits: StageOutput,
    embeddings: StageOutput,
    config: ReportConfig = ReportConfig(),
) -> StageOutput:
    """Render (or find cached) the report of every table, CTR run and retrieval result of this data set."""
    popular = most_popular_stage(output_root, splits)  # cached: the same version the retrieval assets report
    sources = find_sources(output_root, kcore, splits, embeddings, popular)
    version = fingerprint({**sources.fingerprints(), "config": asdict(config), "code": _code()})

    def build(folder: Path) -> dict[str, Any]:
        labels = category_labels(read_parquet(kcore.file("items.parquet")))
        diagnostics = [_diagnose(output_root, table, labels, config) for table in sources.tables]
        reference = _embedding_nmi(embeddings, labels, config)
        runs = ctr_runs(sources)
        per_candidate = ctr_summary(runs)
        retrieval = retrieval_table(sources)
        paragraph = answer(per_candidate, retrieval)
        figures = {
            "downstream.png": plots.downstream_figure(
                per_candidate, retrieval.filter(pl.col("recall@10").is_not_null())
            ),
            "usage.png": plots.usage_figure(diagnostics) if diagnostics else None,
            "collisions.png": plots.collision_figure(diagnostics) if diagnostics else None,
            "nmi.png": plots.nmi_figure(diagnostics, reference, labels.description if labels else ""),
            "spectrum.png": plots.spectrum_figure(diagnostics),
            "correlation.png": plots.correlation_figure(diagnostics),
        }
        images = {name: plots.png_bytes(figure) for name, figure in figures.items() if figure is not None}
        for name, data in images.items():
            write_atomic(folder / name, lambda temporary, data=data: temporary.write_bytes(data))
        stability = stability_table(sources)
        document = report_document(
            sources, diagnostics, labels, runs, per_candidate, retrieval, stability, paragraph, images
        )
        write_text_atomic(folder / MARKDOWN, to_markdown(document))
        write_text_atomic(folder / HTML, to_html(document, images))
        write_text_atomic(folder / SUMMARY, summary_markdown(paragraph, diagnostics, per_candidate, retrieval))
        return {
            "dataset": embeddings.manifest.get("dataset"),
            "answer": paragraph,
            "sources": sources.fingerprints(),
            "config": asdict(config),
            "files": sorted([MARKDOWN, HTML, SUMMARY, *images]),
            "main_figure": next((name for name in MAIN_FIGURES if name in images), None),
            "tables": {d.label: _table_numbers(d) for d in diagnostics},
            "ctr": {f"{r['backbone']}/{r['candidate']}": r["test_auc"] for r in per_candidate.iter_rows(named=True)},
            "retrieval": {_retrieval_name(r): {m: r[m] for m in METRICS} for r in retrieval.iter_rows(named=True)},
            "stability": stability.to_dicts(),
        }

    return run_cached(output_root, STAGE, version, build)


def report_document(
    sources: ReportSources,
    diagnostics: list[TableDiagnostics],
    labels: Labels | None,
    runs: pl.DataFrame,
    per_candidate: pl.DataFrame,
    retrieval: pl.DataFrame,
    stability: pl.DataFrame,
    paragraph: str,
    images: dict[str, bytes],
) -> Document:
    """Every section of the report, in reading order: results first, then what explains them."""
    embeddings = sources.embeddings.manifest
    first, second, pooled = scaling_tables(runs)

    def image(name: str) -> str | None:
        return name if name in images else None

    missing = [f"{d.label}: {d.note}" for d in diagnostics if d.note]
    retrieval_notes = [
        f"SASRec {fp} names no splits version; matched by catalogue size and test users."
        for fp in sources.sasrec_by_counts
    ]
    sections = [
        Section("Downstream results", image=image("downstream.png")),
        Section(
            "Retrieval (test, leave-one-out)",
            "Recall and NDCG at 5, 10 and 20 over every test user. Most popular ranks items by their train "
            "interactions, with the same users, targets and metrics as the models.",
            retrieval.drop("family", "version"),
            notes=retrieval_notes,
        ),
        Section(
            "CTR: test AUC per tokenizer",
            "Mean over seeds per backbone; candidate = the Semantic-ID table (+ MoC fusion) or ID only."
            if not runs.is_empty()
            else "No CTR result yet: materialize `ctr_model` (with and without Semantic IDs) or the scaling study.",
            per_candidate.rename({"test_auc": "test AUC", "test_auc_std": "std", "test_logloss": "logloss"}),
        ),
        Section(
            "CTR: Table 1 (test AUC by scaling factor)",
            "Rows backbone x tokenizer kind, columns scaling factor; MoC read with fusion, the others without, as "
            "in the paper; the ID-only row sits in the 1x column.",
            first,
            notes=pooled,
        )
        if not runs.is_empty()
        else None,
        Section("CTR: Table 2 (fusion ablation)", "Test AUC without (w/o) and with (w/) MoC fusion.", second)
        if not second.is_empty()
        else None,
        Section(
            "Semantic-ID tables",
            f"{len(diagnostics)} tables built from embeddings {sources.embeddings.fingerprint} "
            f"({embeddings.get('model')}, {embeddings.get('dim')}-d). The semantic representation is each item's "
            "codebook vectors concatenated (the tokenizer-side analogue of the paper's Semantic-ID embeddings). "
            "min usage: the least-used level's share of codes used; collisions: share of items whose code tuple "
            "another item shares; NMI: against the item categories; σ1: the representation's top singular value "
            "(unit Frobenius norm); mean |corr|: mean absolute correlation between codebooks.",
            summary_frame(diagnostics),
            notes=missing,
        ),
        Section(
            "Semantic-ID stability",
            "Items whose Semantic ID (codes or collision suffix) changed when a table was re-indexed, against the "
            "version before (since). Under a frozen tokenizer kept items keep their IDs and only new items are "
            "encoded; after retraining, a model trained on the old IDs reads the changed ones wrongly.",
            stability,
        )
        if not stability.is_empty()
        else None,
        Section("Codebook usage per level", image=image("usage.png")),
        Section("Collisions", image=image("collisions.png")),
        Section(
            "Discriminability (NMI)",
            f"Against {labels.description} ({labels.n_classes} classes)."
            if labels
            else "The items have no categories to score NMI against.",
            image=image("nmi.png"),
        ),
        Section("Dimension robustness (singular spectra)", image=image("spectrum.png")),
        Section(
            "Correlation between codebooks",
            "" if image("correlation.png") else "No table has two or more codebooks.",
            image=image("correlation.png"),
        ),
    ]
    facts = {
        "data set": str(embeddings.get("dataset")),
        "versions read": f"k-core {sources.kcore.fingerprint}, splits {sources.splits.fingerprint}, embeddings "
        f"{sources.embeddings.fingerprint}",
        "results read": f"{len(sources.tables)} Semantic-ID tables, {len(sources.ctr_models)} CTR models, "
        f"{len(sources.sid_evals)} Semantic-ID recommender evaluations, {len(sources.sasrec)} SASRec models",
    }
    title = f"semid report: {embeddings.get('dataset')}"
    return Document(title, facts, paragraph, [section for section in sections if section is not None])


def summary_markdown(
    paragraph: str, diagnostics: list[TableDiagnostics], per_candidate: pl.DataFrame, retrieval: pl.DataFrame
) -> str:
    """The answer and the three tables a user compares first, for the asset's metadata."""
    parts = [paragraph]
    if not retrieval.is_empty():
        parts.append(markdown_table(retrieval.select("model", "tokenizer", *METRICS)))
    if not per_candidate.is_empty():
        parts.append(markdown_table(per_candidate.select("backbone", "candidate", "runs", "test_auc")))
    if diagnostics:
        parts.append(markdown_table(summary_frame(diagnostics)))
    return "\n\n".join(parts) + "\n"


def _diagnose(output_root: Path, table: TableSource, labels: Labels | None, config: ReportConfig) -> TableDiagnostics:
    frame = read_table(table.stage)
    per_code, note = codebook_vectors(output_root, table, table_codes(frame))
    return diagnose(table, frame, labels, per_code, config.cluster_counts, config.seed, note)


def _embedding_nmi(embeddings: StageOutput, labels: Labels | None, config: ReportConfig) -> dict[int, float] | None:
    """The NMI curve of the text embeddings themselves: what the tokenizers' curves are read against."""
    if labels is None:
        return None
    item_ids, vectors = read_embeddings(embeddings)
    counts = [k for k in config.cluster_counts if k < len(item_ids)]
    return kmeans_nmi(vectors, labels.of(item_ids), counts, config.seed) if counts else None


def _table_numbers(d: TableDiagnostics) -> dict[str, Any]:
    return {
        "min_usage": d.min_usage,
        "collision_rate": d.collision_rate,
        "nmi_joint": d.nmi_joint,
        "top_singular_value": d.top_singular_value,
        "mean_abs_correlation": d.mean_abs_correlation,
    }


def _retrieval_name(row: dict[str, Any]) -> str:
    return row["model"] if row["tokenizer"] == "-" else f"{row['model']} {row['tokenizer']}"


def _code() -> str:
    return code_version(REPORTS_CODE, OPS / "diagnostics", OPS / "ctr" / "study.py")

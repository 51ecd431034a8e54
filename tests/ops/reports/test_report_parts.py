"""The report's parts by hand: category labels, table names, figures, documents."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from ops.caching import StageOutput
from ops.reports import plots
from ops.reports.diagnostics import TableDiagnostics, category_labels
from ops.reports.documents import Document, Section, to_html, to_markdown
from ops.reports.results import CTR_SCHEMA, ctr_summary, scaling_tables
from ops.reports.sources import table_sources


def test_category_labels_skip_levels_every_item_shares():
    items = pl.DataFrame(
        {"item_id": ["a", "b", "c", "d"], "categories": [["Beauty", "Hair"], ["Beauty", "Skin"], ["Beauty"], []]}
    )
    labels = category_labels(items)
    assert labels.description == "categories[1]" and labels.n_classes == 3
    assert labels.of(["a", "c", "x"]).tolist() == ["Hair", "(none)", "(none)"]
    assert category_labels(items.with_columns(categories=pl.lit(["Gift Cards"]))) is None


def stage(fingerprint: str, kind: str, scale: int, codebook_size: int = 256) -> StageOutput:
    manifest = {"tokenizer": {"kind": kind}, "scaling_factor": scale, "codebook_size": codebook_size}
    return StageOutput("semantic_ids", fingerprint, f"/x/{fingerprint}", manifest)


def test_tables_are_named_by_kind_scale_and_codebook_and_ordered():
    sources = table_sources(
        [stage("bbbbbb11", "moc", 3), stage("aaaaaa22", "rqvae", 3), stage("cccccc33", "rqvae", 3), stage("d", "x", 2)]
    )
    assert [s.label for s in sources] == ["RQ-VAE 3x256 (aaaaaa)", "RQ-VAE 3x256 (cccccc)", "MoC 3x256", "x 2x256"]


def diagnostics(label: str, kind: str, scale: int, with_representation: bool = True) -> TableDiagnostics:
    rng = np.random.default_rng(scale)
    correlation = np.corrcoef(rng.normal(size=(scale, 20))) if with_representation else None
    return TableDiagnostics(
        label=label,
        kind=kind,
        scale=scale,
        codebook_size=16,
        n_items=100,
        usage=[1.0] * scale,
        perplexity=[12.0] * scale,
        collision_rate=0.1,
        collision_rate_with_suffix=0.0,
        max_suffix=2,
        distinct_tuples=90,
        nmi_levels=[0.3] * scale,
        nmi_joint=0.4,
        nmi_clusters={2: 0.2, 4: 0.3} if with_representation else None,
        spectrum=np.sort(rng.random(8 * scale))[::-1] if with_representation else None,
        correlation=correlation,
        note="" if with_representation else "no vectors",
    )


def test_figures_have_a_panel_per_what_they_compare():
    tables = [
        diagnostics("RQ-VAE 2x16", "rqvae", 2),
        diagnostics("MoC 3x16", "moc", 3),
        diagnostics("ME 1x16", "me", 1),
    ]
    assert len(plots.usage_figure(tables).axes) == 2
    assert len(plots.spectrum_figure(tables).axes) == 3  # one panel per scaling factor (1x, 2x, 3x)
    correlation = plots.correlation_figure(tables)
    assert len([axis for axis in correlation.axes if axis.get_visible() and axis.images]) == 2  # ME has one code
    nmi = plots.nmi_figure(tables, {2: 0.25, 4: 0.35}, "categories[1]")
    assert [line.get_label() for line in nmi.axes[1].lines][-1] == "text embedding"
    assert isinstance(plots.collision_figure(tables), Figure)
    codes_only = [diagnostics("RQ-VAE 2x16", "rqvae", 2, with_representation=False)]
    assert plots.spectrum_figure(codes_only) is None and plots.correlation_figure(codes_only) is None
    assert plots.downstream_figure(pl.DataFrame(), pl.DataFrame()) is None
    assert plots.png_bytes(plots.usage_figure(tables))[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_and_html_say_the_same_thing():
    table = pl.DataFrame(
        {"model": ["a|b"], "recall@10": [0.123456], "epochs": [None]}, schema_overrides={"epochs": pl.Int64}
    )
    document = Document(
        "semid report: x",
        {"data set": "x"},
        "Use <MoC> & not `RQ`.",
        [Section("Numbers", "Some text.", table, image="fig.png", notes=["a note"])],
    )
    markdown = to_markdown(document)
    assert "| a\\|b | 0.1235 | – |" in markdown and "![Numbers](fig.png)" in markdown and "*a note*" in markdown
    page = to_html(document, {"fig.png": b"\x89PNG"})
    assert "Use &lt;MoC&gt; &amp; not <code>RQ</code>." in page and "<td class='num'>0.1235</td>" in page
    assert "src='data:image/png;base64,iVBORw=='" in page


def ctr_run(kind: str, scale: int, table: str | None, auc: float, seed: int = 0) -> dict:
    return {
        "backbone": "deepfm",
        "tokenizer": kind,
        "kind": kind,
        "scale": scale,
        "fusion": False,
        "seed": seed,
        "test_auc": auc,
        "test_logloss": 0.5,
        "valid_auc": auc,
        "table": table,
        "version": f"{kind}{scale}{table}{seed}",
    }


def test_scaling_tables_say_what_they_pool_and_what_they_cannot_show():
    runs = pl.DataFrame(
        [ctr_run("id", 0, None, 0.70), ctr_run("rqvae", 3, "t20", 0.72), ctr_run("rqvae", 3, "t300", 0.74)],
        schema=CTR_SCHEMA,
    )
    first, second, notes = scaling_tables(runs)
    assert first.columns == ["backbone", "kind", "3x"] and first["3x"].to_list() == [None, "0.7300 ± 0.0141"]
    assert second.columns == ["backbone", "kind", "3x w/o", "3x w/"]
    assert notes == [
        "deepfm rqvae 3x w/o fusion pools runs of 2 table versions",
        "ID only belongs in the 1x column, which these runs lack (no 1x run): see the per-tokenizer table",
    ]
    with_1x = pl.concat([runs, pl.DataFrame([ctr_run("rqvae", 1, "t1", 0.71)], schema=CTR_SCHEMA)])
    first, _, notes = scaling_tables(with_1x)
    assert first.filter(pl.col("kind") == "id")["1x"].item() == "0.7000" and len(notes) == 1
    summary = ctr_summary(runs)
    assert summary.filter(pl.col("candidate") == "rqvae")["runs"].item() == 2

"""The report's figures: pure functions from diagnostics and result frames to matplotlib Figures, and PNG bytes.

Figures are built with `matplotlib.figure.Figure` (the Agg canvas, no pyplot state), so rendering is safe in
any process and leaves no global state behind. Colours follow the tokenizer kind in every figure; tables of
one kind at several scales differ by line style, and every table has its own marker.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from ops.reports.diagnostics import TableDiagnostics
from ops.reports.results import ID_BASED, POPULAR

DPI = 100
WIDTH = 10.0  # inches: 1000 px, readable in a browser and in the Dagster UI
KIND_COLORS = {
    "vqvae": "#7570b3",
    "rqvae": "#d95f02",
    "rqkmeans": "#a6761d",
    "moc": "#1b9e77",
    "me": "#e7298a",
    "lamia": "#66a61e",
}  # ColorBrewer Dark2, one colour per tokenizer kind
OTHER_COLOR = "#666666"  # unknown kinds, ID only, baselines
LINE_STYLES = ("-", "--", ":", "-.")  # successive tables of one kind
MARKERS = ("o", "s", "^", "D", "v", "P")  # successive tables, so equal values stay told apart
JITTER = 0.04  # horizontal offset between tables at one level (levels are categories: offsets mislead nobody)
SPECTRUM_FLOOR = 1e-6  # singular values are drawn on a log axis; exact zeros (collapse) sit at the floor


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)  # constrained layout already fits every label
    return buffer.getvalue()


def usage_figure(diagnostics: Sequence[TableDiagnostics]) -> Figure:
    """Codebook usage (fraction of codes used) and perplexity / codebook size per level, one line per table."""
    figure = Figure(figsize=(WIDTH, 3.8), layout="constrained")
    used, spread = figure.subplots(1, 2)
    styles = _styles(diagnostics)
    for rank, d in enumerate(diagnostics):
        levels = np.arange(1, d.levels + 1) + JITTER * (rank - (len(diagnostics) - 1) / 2)  # equal lines stay visible
        used.plot(levels, d.usage, label=d.label, **styles[d.label])
        spread.plot(levels, np.asarray(d.perplexity) / d.codebook_size, label=d.label, **styles[d.label])
    for axis, title in ((used, "codes used / codebook size"), (spread, "perplexity / codebook size")):
        axis.set(title=title, xlabel="level (codebook)", ylim=(0, 1.05))
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
    _legend_below(figure, used, len(diagnostics))
    figure.suptitle("Codebook usage per level")
    return figure


def collision_figure(diagnostics: Sequence[TableDiagnostics]) -> Figure:
    """Share of items whose whole code tuple is shared (before the suffix), per table, with the largest suffix."""
    figure = Figure(figsize=(WIDTH, 1.0 + 0.45 * len(diagnostics)), layout="constrained")
    axis = figure.subplots()
    rows = np.arange(len(diagnostics))
    rates = [d.collision_rate for d in diagnostics]
    axis.barh(rows, rates, color=[KIND_COLORS.get(d.kind, OTHER_COLOR) for d in diagnostics])
    for row, d in zip(rows, diagnostics, strict=True):
        text = f" {d.collision_rate:.1%}  (max suffix {d.max_suffix}, {d.distinct_tuples:,} distinct tuples)"
        axis.text(d.collision_rate, row, text, va="center", fontsize=9)
    axis.set(yticks=rows, yticklabels=[d.label for d in diagnostics], xlim=(0, 1.6), xlabel="collision rate")
    axis.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    axis.invert_yaxis()
    axis.grid(axis="x", alpha=0.3)
    axis.set_title("Items sharing their code tuple (before the collision suffix)")
    return figure


def nmi_figure(
    diagnostics: Sequence[TableDiagnostics], reference: Mapping[int, float] | None, labels: str
) -> Figure | None:
    """(a) NMI of each level's codes (paper Fig. 3a), (b) NMI of K-Means clusters of the semantic
    representation vs the number of clusters (Fig. 2b/3b), the text embedding's curve as a dashed reference."""
    scored = [d for d in diagnostics if d.nmi_levels is not None]
    if not scored:
        return None
    figure = Figure(figsize=(WIDTH, 3.8), layout="constrained")
    codes, clusters = figure.subplots(1, 2)
    styles = _styles(scored)
    for d in scored:
        codes.plot(np.arange(1, d.levels + 1), d.nmi_levels, label=d.label, **styles[d.label])
        if d.nmi_clusters:
            counts = sorted(d.nmi_clusters)
            clusters.plot(counts, [d.nmi_clusters[k] for k in counts], **styles[d.label])
    if reference:
        counts = sorted(reference)
        clusters.plot(counts, [reference[k] for k in counts], "k--", marker="x", label="text embedding")
        clusters.legend(loc="best", fontsize=8)
    codes.set(title="(a) NMI of each level's codes", xlabel="level (codebook)", ylabel=f"NMI vs {labels}")
    codes.xaxis.get_major_locator().set_params(integer=True)
    clusters.set(title="(b) NMI of K-Means clusters of the representation", xlabel="clusters", xscale="log")
    counts = sorted({k for d in scored for k in d.nmi_clusters or {}} | set(reference or {}))
    clusters.set_xticks(counts, [str(k) for k in counts])  # the measured counts, not powers of ten
    clusters.xaxis.set_minor_locator(NullLocator())
    for axis in (codes, clusters):
        axis.grid(alpha=0.3)
    _legend_below(figure, codes, len(scored))
    figure.suptitle("Discriminability: NMI against item categories")
    return figure


def spectrum_figure(diagnostics: Sequence[TableDiagnostics]) -> Figure | None:
    """Normalized singular spectra of the semantic representation, one panel per scaling factor (paper Fig. 4)."""
    measured = [d for d in diagnostics if d.spectrum is not None]
    if not measured:
        return None
    scales = sorted({d.scale for d in measured})
    figure = Figure(figsize=(WIDTH, 3.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(scales), sharey=True))
    styles = _styles(measured)
    for axis, scale in zip(axes, scales, strict=True):
        for d in (d for d in measured if d.scale == scale):
            values = np.maximum(d.spectrum, SPECTRUM_FLOOR)
            axis.plot(np.arange(1, len(values) + 1), values, label=d.label, **{**styles[d.label], "marker": None})
        axis.set(title=f"scaling factor {scale}x", xlabel="singular value index", yscale="log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0].set_ylabel("singular value (unit Frobenius norm)")
    figure.suptitle("Dimension robustness: singular spectrum of the semantic representation")
    return figure


def correlation_figure(diagnostics: Sequence[TableDiagnostics]) -> Figure | None:
    """Pearson correlation between the codebooks of each table with two or more (paper Fig. 7)."""
    shown = [d for d in diagnostics if d.correlation is not None and d.levels > 1]
    if not shown:
        return None
    columns = min(4, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = Figure(figsize=(min(WIDTH, 1.5 + 2.8 * columns), 0.6 + 2.6 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    image = None
    for axis, d in zip(axes, shown, strict=False):
        image = axis.imshow(d.correlation, vmin=-1, vmax=1, cmap="RdBu_r")
        ticks = np.arange(d.levels)
        names = [str(level + 1) for level in ticks]
        axis.set(title=d.label, xticks=ticks, yticks=ticks, xticklabels=names, yticklabels=names)
        if d.levels <= 8:
            for (i, j), value in np.ndenumerate(d.correlation):
                color = "white" if abs(value) > 0.6 else "black"
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color=color)
    for axis in axes[len(shown) :]:
        axis.set_visible(False)
    figure.colorbar(image, ax=axes.tolist(), shrink=0.8, label="Pearson r")
    figure.suptitle("Correlation between codebooks (SID 1..N)")
    return figure


def downstream_figure(ctr: pl.DataFrame, retrieval: pl.DataFrame) -> Figure | None:
    """Test AUC per CTR candidate and backbone; Recall@10 and NDCG@10 per retrieval model."""
    panels = [name for name, frame in (("ctr", ctr), ("retrieval", retrieval)) if not frame.is_empty()]
    if not panels:
        return None
    height = max(_ctr_height(ctr), _retrieval_height(retrieval))
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels)))
    for axis, name in zip(axes, panels, strict=True):
        if name == "ctr":
            _ctr_bars(axis, ctr)
        else:
            _retrieval_bars(axis, retrieval)
    figure.suptitle("Downstream results")
    return figure


def _ctr_bars(axis: Axes, ctr: pl.DataFrame) -> None:
    """Horizontal bars per candidate, one per backbone, the axis zoomed to the range of the AUCs."""
    candidates = ctr.group_by("candidate").agg(pl.col("test_auc").mean()).sort("test_auc", descending=True)
    names = candidates["candidate"].to_list()
    backbones = sorted(set(ctr["backbone"].to_list()))
    height = 0.8 / len(backbones)
    for b, backbone in enumerate(backbones):
        rows = dict(ctr.filter(pl.col("backbone") == backbone).select("candidate", "test_auc").iter_rows())
        positions = [i + b * height for i, name in enumerate(names) if name in rows]
        values = [rows[name] for name in names if name in rows]
        bars = axis.barh(positions, values, height=height, label=backbone, color=f"C{b}")
        axis.bar_label(bars, fmt="%.4f", fontsize=8, padding=2)
    low, high = float(ctr["test_auc"].min()), float(ctr["test_auc"].max())
    margin = max(high - low, 0.002)
    axis.set_xlim(low - margin, high + 0.6 * margin)
    axis.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names)
    axis.invert_yaxis()
    axis.set(title="CTR: test AUC (mean over seeds)", xlabel="test AUC")
    axis.grid(axis="x", alpha=0.3)
    if len(backbones) > 1:
        axis.legend(fontsize=8)


def _retrieval_bars(axis: Axes, retrieval: pl.DataFrame) -> None:
    names = [
        row["model"] if row["family"] in (POPULAR, ID_BASED) else f"{row['model']} · {row['tokenizer']}"
        for row in retrieval.iter_rows(named=True)
    ]
    positions = np.arange(len(names))
    for offset, metric, color in ((0.0, "recall@10", "#1f78b4"), (0.4, "ndcg@10", "#a6cee3")):
        bars = axis.barh(positions + offset, retrieval[metric].to_numpy(), height=0.4, label=metric, color=color)
        axis.bar_label(bars, fmt="%.4f", fontsize=8, padding=2)
    axis.set_yticks(positions + 0.2, names)
    axis.invert_yaxis()
    axis.set_xlim(0, float(retrieval["recall@10"].max()) * 1.3 or 1.0)
    axis.set(title="Retrieval: test Recall@10 / NDCG@10", xlabel="metric")
    axis.xaxis.set_major_locator(MaxNLocator(4))
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")


def _ctr_height(ctr: pl.DataFrame) -> float:
    """Inches: a row per candidate (its backbones' bars share the row)."""
    return 1.5 + 0.5 * ctr["candidate"].n_unique() if len(ctr) else 0.0


def _retrieval_height(retrieval: pl.DataFrame) -> float:
    """Inches: a row per model (Recall@10 and NDCG@10 bars share the row)."""
    return 1.5 + 0.5 * len(retrieval) if len(retrieval) else 0.0


def _styles(diagnostics: Sequence[TableDiagnostics]) -> dict[str, dict[str, str]]:
    """Colour by kind, line style by the table's rank among the tables of its kind, a marker per table."""
    seen: dict[str, int] = {}
    styles = {}
    for index, d in enumerate(diagnostics):
        rank = seen.get(d.kind, 0)
        seen[d.kind] = rank + 1
        styles[d.label] = {
            "color": KIND_COLORS.get(d.kind, OTHER_COLOR),
            "linestyle": LINE_STYLES[rank % len(LINE_STYLES)],
            "marker": MARKERS[index % len(MARKERS)],
        }
    return styles


def _legend_below(figure: Figure, axis: Axes, entries: int) -> None:
    """One legend for both panels, under them (tables can be many, labels long)."""
    handles, names = axis.get_legend_handles_labels()
    figure.legend(handles, names, loc="outside lower center", ncol=min(entries, 4), fontsize=8)

"""The report on a real slice (Magazine Subscriptions: MiniLM embeddings, tiny RQ-VAE and MoC tables, tiny DeepFMs): every
figure renders, the HTML is self-contained and opens in a browser, and the numbers are the stages' own."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from ops.reports.stage import HTML, MARKDOWN, ReportConfig, report_stage

FIGURES = {"downstream.png", "usage.png", "collisions.png", "nmi.png", "spectrum.png", "correlation.png"}


class Images(HTMLParser):
    """The ``src`` of every <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")


@pytest.fixture(scope="module")
def report(real_slice):
    prepared = real_slice.prepared
    return report_stage(real_slice.root, prepared.kcore, prepared.splits, prepared.embeddings, ReportConfig.test())


def test_every_figure_is_a_real_png_and_the_markdown_links_them(report):
    assert FIGURES <= set(report.manifest["files"])
    for name in FIGURES:
        image = Image.open(report.file(name))
        assert image.format == "PNG" and image.width >= 600
        pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 10, f"{name} is blank"
    markdown = report.file(MARKDOWN).read_text()
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown))
    assert linked == FIGURES and all(report.file(name).is_file() for name in linked)


def test_the_html_embeds_every_figure_and_needs_no_other_file(report):
    page = report.file(HTML).read_text()
    parser = Images()
    parser.feed(page)
    assert len(parser.sources) == len(FIGURES)
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).format == "PNG"
    assert "http" not in page.replace("http-equiv", ""), "a self-contained page fetches nothing"


def test_the_numbers_are_the_stages_own(real_slice, report):
    manifest = report.manifest
    assert set(manifest["tables"]) == {"RQ-VAE 2x16", "MoC 2x16"}
    for kind, label in (("rqvae", "RQ-VAE 2x16"), ("moc", "MoC 2x16")):
        table = real_slice.tables[kind].manifest
        assert manifest["tables"][label]["collision_rate"] == pytest.approx(table["collisions"]["collision_rate"])
        assert manifest["tables"][label]["min_usage"] == pytest.approx(min(table["code_usage"]["usage"]))
        auc = real_slice.ctr[kind].manifest["test_auc"]
        assert manifest["ctr"][f"deepfm/{label}"] == pytest.approx(auc)
    aucs = {name: stage.manifest["test_auc"] for name, stage in real_slice.ctr.items()}
    names = {"id": "ID only", "rqvae": "RQ-VAE 2x16", "moc": "MoC 2x16"}
    best = max((kind for kind in aucs if kind != "id"), key=aucs.get)
    if aucs[best] > aucs["id"]:
        assert f"{names[best]} has the highest test AUC, {aucs[best]:.4f}" in manifest["answer"]
    else:
        assert f"ID only wins: test AUC {aucs['id']:.4f}" in manifest["answer"]
    assert 0 < manifest["retrieval"]["Most popular"]["recall@20"] <= 1


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_html_opens_in_a_headless_browser(report, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            report.file(HTML).as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2400, 1200)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 200, "the page rendered text and figures, not a blank or error page"

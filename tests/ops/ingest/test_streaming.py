"""Streaming ingestion: tiny blocks and chunks change nothing, and a large 2023 reviews file ingests in bounded memory."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import polars as pl

from bench.synthetic_reviews import write_reviews_2023
from ops.ingest import streaming
from ops.ingest.readers.amazon2018 import read_amazon2018
from ops.ingest.readers.amazon2023 import read_amazon2023
from tests.conftest import REPO_ROOT

BOM = b"\xef\xbb\xbf"
N_REVIEWS = 1_000_000  # 444 MB of JSON lines: ~10 s to ingest; the pre-streaming reader peaked at 1.6 GiB on it
PEAK_RSS_MIB = 600  # measured ~380 MiB (of which ~95 MiB is the interpreter with polars and pyarrow)


def _same(a, b) -> None:
    assert a.items.equals(b.items) and a.interactions.equals(b.interactions)
    assert a.rejects.to_frame().equals(b.rejects.to_frame()) and a.counters == b.counters
    assert a.rejects.digests == b.rejects.digests and a.rejects.rows_read == b.rejects.rows_read


def _read_tiny(monkeypatch, block_bytes, chunk_rows, read, *paths):
    """``read(*paths)`` with tiny blocks and chunks: lines and chunks cross every kind of boundary."""
    with monkeypatch.context() as patch:
        patch.setattr(streaming, "BLOCK_BYTES", block_bytes)
        patch.setattr(streaming, "CHUNK_ROWS", chunk_rows)
        return read(*paths)


def test_tiny_blocks_and_chunks_change_nothing_on_real_data(shared_data, monkeypatch):
    folder = shared_data("amazon2018-magazine-subscriptions")  # repeated meta records and repeated reviews
    paths = (folder / "Magazine_Subscriptions_5.json.gz", folder / "meta_Magazine_Subscriptions.json.gz")
    reference = read_amazon2018(*paths)
    assert (
        reference.counters["duplicate_items_dropped"] == 1065 and reference.counters["duplicate_reviews_dropped"] == 44
    )
    _same(reference, _read_tiny(monkeypatch, 1009, 97, read_amazon2018, *paths))


def test_tiny_blocks_keep_crlf_bom_gzip_and_rejects(fixtures_dir, tmp_path, monkeypatch):
    source = fixtures_dir / "amazon2023"
    reviews = (source / "Tiny_Care.jsonl").read_bytes().replace(b"\n", b"\r\n")
    damaged = BOM + reviews + b"not json\r\n\r\n" + b'{"user_id": "x"}'  # two rejects, the last without a newline
    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress(damaged))
    paths = (tmp_path / "r.jsonl.gz", source / "meta_Tiny_Care.jsonl")
    reference = read_amazon2023(*paths)
    assert [(line, field) for _, line, field, _, _ in reference.rejects.to_frame().rows()] == [
        (6, "<record>"),
        (8, "parent_asin"),
    ]
    _same(reference, _read_tiny(monkeypatch, 7, 2, read_amazon2023, *paths))


def test_a_large_2023_reviews_file_ingests_in_bounded_memory(tmp_path):
    path = tmp_path / "Synthetic.jsonl"
    lines = write_reviews_2023(path, N_REVIEWS, seed=16)
    # The child reports its own peak (VmHWM): RUSAGE_CHILDREN would be the largest child's of this whole session.
    command = [sys.executable, "-m", "bench.synthetic_reviews", str(path)]
    child = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    measured = json.loads(child.stdout)
    reference = (  # a different parser: polars' own NDJSON reader, a review being (user, item, text, second)
        pl.scan_ndjson(
            path, schema={"user_id": pl.String, "parent_asin": pl.String, "text": pl.String, "timestamp": pl.Int64}
        )
        .select(pl.struct("user_id", "parent_asin", "text", pl.col("timestamp") // 1000).n_unique())
        .collect()
        .item()
    )
    assert measured["rows_read"] == lines and measured["interactions"] == reference == N_REVIEWS
    assert measured["duplicates"] == lines - N_REVIEWS
    assert measured["peak_rss_mib"] < PEAK_RSS_MIB, measured
    assert path.stat().st_size > 400 * 2**20  # the file is larger than the bound: a whole-file read could not pass

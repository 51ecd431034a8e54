"""MIND reader: the real small-train subset against its PROVENANCE counts, hand-written TSVs, damaged rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.normalize import with_positions
from ops.ingest.readers.mind import read_mind


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "mind"


def unix(text: str) -> int:
    return int(datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=UTC).timestamp())


def test_real_sample_matches_provenance(shared_data):
    folder = shared_data("mind-small-sample")
    result = read_mind(folder / "news.tsv", folder / "behaviors.tsv")
    impressions, interactions, items = result.impressions, result.interactions, result.items
    assert len(result.rejects) == 0  # every row has its columns, all 4,000 entity fields parse
    assert result.rejects.rows_read[str(folder / "news.tsv")] == 2000
    assert result.rejects.rows_read[str(folder / "behaviors.tsv")] == 5000
    assert impressions["impression_id"].n_unique() == 5000
    assert impressions.height == 189_359 and impressions["clicked"].sum() == 7542
    assert impressions["user_id"].n_unique() == 4637
    first, last = impressions["timestamp"].min(), impressions["timestamp"].max()
    assert unix("11/9/2019 12:00:00 AM") <= first and last < unix("11/15/2019 12:00:00 AM")
    # 22,592 referenced news ids, 838 of them in news.tsv: the rest are text-less placeholders
    referenced = pl.concat([interactions["item_id"], impressions["item_id"]]).unique()
    assert referenced.len() == 22_592
    assert referenced.is_in(items.filter("has_text")["item_id"].implode()).sum() == 838
    assert result.counters["textless_items"] == 22_592 - 838
    assert items.height == 2000 + 22_592 - 838 and items["item_id"].n_unique() == items.height
    assert items.filter("has_text").height == 2000
    assert items["description"].count() == 2000 - 99  # 99 empty abstracts
    clicks = interactions.filter(pl.col("timestamp").is_not_null())
    assert clicks.height == 7542 and interactions["user_id"].n_unique() == 4637
    history = interactions.filter(pl.col("timestamp").is_null())
    assert history.height == history.unique(["user_id", "item_id"]).height


def test_fixture_items(fixtures):
    items = read_mind(fixtures / "news.tsv", fixtures / "behaviors.tsv").items
    rows = {row["item_id"]: row for row in items.to_dicts()}
    assert list(rows) == ["N1001", "N1002", "N1003", "N1004", "N2000", "N3000"]
    assert rows["N1001"]["title"] == "Rivers win the season opener"  # odd whitespace collapsed
    assert rows["N1001"]["categories"] == ["sports", "football_nfl"]
    assert json.loads(rows["N1001"]["attributes"]) == {
        "title_entities": [
            {
                "Confidence": 0.98,
                "Label": "Rivers (team)",
                "OccurrenceOffsets": [0],
                "SurfaceForms": ["Rivers"],
                "Type": "O",
                "WikidataId": "Q0000001",
            }
        ],
        "url": "https://example.com/news/a1.html",
    }
    assert rows["N1002"]["description"] is None  # empty abstract
    assert [row["has_text"] for row in rows.values()] == [True, True, True, True, False, False]


def test_fixture_history_then_clicks(fixtures):
    result = read_mind(fixtures / "news.tsv", fixtures / "behaviors.tsv")
    t1, t2, t3 = unix("11/12/2019 2:14:46 PM"), unix("11/13/2019 9:05:01 AM"), unix("11/14/2019 12:00:00 AM")
    assert result.interactions.rows() == [
        # history N1004 N2000 N1001 N3000 N1001, repeated on both impressions: each news once, in history order
        ("U100", "N1004", None, None),
        ("U100", "N2000", None, None),
        ("U100", "N1001", None, None),
        ("U100", "N3000", None, None),
        ("U100", "N1002", t1, None),
        ("U200", "N1001", t2, None),
        ("U100", "N1003", t3, None),
        ("U100", "N3000", t3, None),
    ]
    assert result.counters == {
        "duplicate_items_dropped": 0,
        "duplicate_impressions_dropped": 0,
        "duplicate_history_dropped": 6,
        "textless_items": 2,
    }
    ordered = with_positions(result.interactions).filter(pl.col("user_id") == "U100")
    assert ordered["item_id"].to_list() == ["N1004", "N2000", "N1001", "N3000", "N1002", "N1003", "N3000"]


def test_fixture_impressions(fixtures):
    impressions = read_mind(fixtures / "news.tsv", fixtures / "behaviors.tsv").impressions
    assert impressions.select("impression_id", "slot", "item_id", "clicked").rows() == [
        ("7", 0, "N1002", True),
        ("7", 1, "N3000", False),
        ("7", 2, "N1003", False),
        ("15", 0, "N1004", False),
        ("15", 1, "N1001", True),
        ("22", 0, "N1003", True),
        ("22", 1, "N1002", False),
        ("22", 2, "N3000", True),
    ]
    assert impressions["timestamp"].unique().len() == 3


def test_reading_twice_gives_identical_frames(fixtures):
    first = read_mind(fixtures / "news.tsv", fixtures / "behaviors.tsv")
    second = read_mind(fixtures / "news.tsv", fixtures / "behaviors.tsv")
    for table in ("items", "interactions", "impressions"):
        assert getattr(first, table).equals(getattr(second, table))


def test_malformed_news_rows_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    good = (fixtures / "news.tsv").read_bytes().splitlines()
    news = tmp_path / "news.tsv"
    news.write_bytes(
        b"\n".join(
            [
                good[0],
                good[1].rsplit(b"\t", 1)[0],  # 2: a column short
                good[2].replace(b'"Confidence": 1.0,', b'"Confidence": 1.0'),  # 3: entity JSON broken
                b"\t" + good[3].split(b"\t", 1)[1],  # 4: no news id
                good[3].replace(b"First frost", b"First \xff frost").replace(b"N1004", b"N1005"),  # 5: bad bytes
                good[3],  # 6
            ]
        )
        + b"\n"
    )
    result = read_mind(news, fixtures / "behaviors.tsv")
    assert rejected(result.rejects) == [
        ("news.tsv", 5, "<encoding>"),
        ("news.tsv", 2, "<columns>"),
        ("news.tsv", 4, "news_id"),
        ("news.tsv", 3, "abstract_entities"),
    ]
    assert result.items.filter("has_text")["item_id"].to_list() == ["N1001", "N1004"]
    assert result.rejects.rows_read[str(news)] == 6


def test_malformed_behavior_rows_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    good = (fixtures / "behaviors.tsv").read_bytes().splitlines()
    behaviors = tmp_path / "behaviors.tsv"
    behaviors.write_bytes(
        b"\n".join(
            [
                good[0],
                good[1].replace(b"9:05:01 AM", b"9:05:01"),  # 2: no AM/PM
                good[2].replace(b"N1003-1", b"N1003-2"),  # 3: label neither 0 nor 1
                good[1].replace(b"U200", b""),  # 4: no user
                good[1] + b"\textra",  # 5: a column too many
                good[2].replace(b"U100", b"U\xe9"),  # 6: latin-1 byte
            ]
        )
    )
    result = read_mind(fixtures / "news.tsv", behaviors)
    assert sorted(rejected(result.rejects)) == [
        ("behaviors.tsv", 2, "time"),
        ("behaviors.tsv", 3, "impressions"),
        ("behaviors.tsv", 4, "user_id"),
        ("behaviors.tsv", 5, "<columns>"),
        ("behaviors.tsv", 6, "<encoding>"),
    ]
    assert result.impressions["impression_id"].unique().to_list() == ["7"]
    assert result.interactions.height == 4 + 1  # the history of impression 7, then its click


def test_gzipped_files_read_the_same_and_truncated_ones_raise(fixtures, gzipped):
    plain = read_mind(fixtures / "news.tsv", fixtures / "behaviors.tsv")
    packed = read_mind(gzipped(fixtures / "news.tsv"), gzipped(fixtures / "behaviors.tsv"))
    assert plain.items.equals(packed.items) and plain.impressions.equals(packed.impressions)
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_mind(fixtures / "news.tsv", gzipped(fixtures / "behaviors.tsv", cut=True))


def test_missing_file_raises_ingest_error(fixtures, tmp_path):
    with pytest.raises(IngestError, match="file not found"):
        read_mind(tmp_path / "news.tsv", fixtures / "behaviors.tsv")

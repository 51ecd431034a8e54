"""Amazon 2023 reader: the real meta sample against its PROVENANCE counts, hand-written review/meta fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.ingest.errors import IngestError
from ops.ingest.readers.amazon2023 import read_amazon2023

REVIEWS = "Tiny_Care.jsonl"
META = "meta_Tiny_Care.jsonl"


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "amazon2023"


def test_real_meta_sample_matches_provenance(shared_data):
    path = shared_data("amazon2023-health-personal-care-meta-sample") / "meta_Health_and_Personal_Care.jsonl"
    result = read_amazon2023(meta=path)
    items = result.items
    assert len(result.rejects) == 0 and result.rejects.rows_read[str(path)] == 1001
    assert items.height == 1001 and items["item_id"].n_unique() == 1001
    assert items["title"].count() == 1001 and items["has_text"].all()
    assert items["price"].count() == 1001 - 791
    assert (items["categories"].list.len() == 0).all()  # empty for the whole category in this release
    assert items["brand"].count() == 1001 - 17  # details.Brand, else store; 17 have neither
    # 784 have no description and 679 no features; 639 have neither
    assert items["description"].count() == 1001 - 639
    assert result.interactions.height == 0
    assert result.counters == {
        "duplicate_items_dropped": 0,
        "titles_without_text": 0,
        "prices_unparsed": 0,
        "textless_items": 0,
    }
    attributes = json.loads(items["attributes"][0])
    assert attributes["main_category"] == "Health & Personal Care" and "images" in attributes


def test_fixture_reviews_use_parent_asin_and_seconds(fixtures):
    result = read_amazon2023(fixtures / REVIEWS, fixtures / META)
    assert result.interactions.rows() == [
        ("AZZ23USER0000000000000001", "B0ZPAR0001", 1588687728, 5.0),
        ("AZZ23USER0000000000000001", "B0ZPAR0002", 1600000000, 3.0),
        ("AZZ23USER0000000000000002", "B0ZPAR0001", 1610000000, 4.0),
        # line 4 repeats line 1 on another variant (asin) of the same product: dropped
        ("AZZ23USER0000000000000002", "B0ZPAR0009", 1620000000, 1.0),
    ]
    assert result.counters["duplicate_reviews_dropped"] == 1
    assert result.counters["textless_items"] == 1


def test_fixture_meta_items(fixtures):
    result = read_amazon2023(fixtures / REVIEWS, fixtures / META)
    items = {row["item_id"]: row for row in result.items.to_dicts()}
    assert list(items) == ["B0ZPAR0001", "B0ZPAR0002", "B0ZPAR0003", "B0ZPAR0009"]
    spray, lotion, brush, missing = items.values()
    assert (spray["title"], spray["brand"], spray["price"]) == ("Saline Nasal Spray, 1.5 fl oz", "Meadow", 6.49)
    assert spray["description"] == "Drug-free & gentle\nSafe for daily use"  # features when there is no description
    assert json.loads(spray["attributes"])["store"] == "Meadow Labs"
    assert (lotion["brand"], lotion["price"]) == ("Brookside", None)  # store when details has no Brand
    assert lotion["description"] == "Light lotion for dry skin.\nMade without fragrance."
    assert brush["brand"] is None and brush["categories"] == ["Health & Household", "Oral Care"]
    assert brush["price"] is None and json.loads(brush["attributes"])["price_raw"] == "from 3.99"
    assert (missing["has_text"], missing["title"]) == (False, None)


def test_reviews_without_meta_give_textless_items(fixtures):
    result = read_amazon2023(reviews=fixtures / REVIEWS)
    assert result.items["item_id"].to_list() == ["B0ZPAR0001", "B0ZPAR0002", "B0ZPAR0009"]
    assert not result.items["has_text"].any()


def test_no_file_at_all_is_a_usage_error():
    with pytest.raises(ValueError, match="needs a reviews file"):
        read_amazon2023()


def test_reading_twice_gives_identical_frames(fixtures):
    first = read_amazon2023(fixtures / REVIEWS, fixtures / META)
    second = read_amazon2023(fixtures / REVIEWS, fixtures / META)
    assert first.items.equals(second.items) and first.interactions.equals(second.interactions)


def test_malformed_review_lines_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    good = (fixtures / REVIEWS).read_bytes().splitlines()
    path = tmp_path / "reviews.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                good[0],
                good[1][:-1],  # 2: bad JSON (unclosed object)
                good[2].replace(b'"parent_asin": "B0ZPAR0001", ', b""),  # 3: missing item id
                good[4].replace(b'"timestamp": 1620000000999', b'"timestamp": "May 3rd"'),  # 4: wrong type
                good[1].replace(b"smells odd", b"smells \xc3\x28odd"),  # 5: invalid UTF-8 sequence
            ]
        )
    )
    result = read_amazon2023(reviews=path)
    assert rejected(result.rejects) == [
        ("reviews.jsonl", 2, "<record>"),
        ("reviews.jsonl", 3, "parent_asin"),
        ("reviews.jsonl", 4, "timestamp"),
        ("reviews.jsonl", 5, "<encoding>"),
    ]
    assert result.interactions.rows() == [("AZZ23USER0000000000000001", "B0ZPAR0001", 1588687728, 5.0)]


def test_malformed_meta_lines_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    good = (fixtures / META).read_bytes().splitlines()
    path = tmp_path / "meta.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                good[0].replace(b'"title": "Saline Nasal Spray, 1.5 fl oz"', b'"title": 42'),  # 1: wrong type
                good[1].replace(b'"parent_asin": "B0ZPAR0002", ', b""),  # 2: missing id
                good[2],
            ]
        )
    )
    result = read_amazon2023(meta=path)
    assert rejected(result.rejects) == [("meta.jsonl", 1, "title"), ("meta.jsonl", 2, "parent_asin")]
    assert result.items["item_id"].to_list() == ["B0ZPAR0003"]


def test_truncated_gzip_raises_ingest_error(fixtures, gzipped):
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_amazon2023(reviews=gzipped(fixtures / REVIEWS, cut=True), meta=fixtures / META)

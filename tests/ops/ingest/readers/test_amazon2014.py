"""Raw Amazon 2014 files: the real Musical Instruments prefix against PROVENANCE.md, and meta fixtures."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.readers.amazon2014 import read_amazon2014


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "amazon2014"


def read_toys(fixtures: Path):
    return read_amazon2014(fixtures / "reviews_Toys_5.json", fixtures / "meta_Toys.json")


def test_real_musical_instruments_prefix_matches_provenance(shared_data):
    path = shared_data("amazon2014-musical-instruments-5core-prefix") / "Musical_Instruments_5.json"
    result = read_amazon2014(path)
    inter = result.interactions
    assert len(result.rejects) == 0 and result.rejects.rows_read[str(path)] == 50
    assert inter.height == 50
    assert inter["user_id"].n_unique() == 49 and inter["item_id"].n_unique() == 7
    assert (inter["timestamp"].min(), inter["timestamp"].max()) == (1_215_302_400, 1_405_382_400)
    assert inter["rating"].is_between(1, 5).all() and inter["rating"].null_count() == 0
    assert inter.row(0) == ("A2IBPI20UZIR0U", "1384719342", 1_393_545_600, 5.0)
    # no meta: every reviewed item is a text-less placeholder
    assert result.counters["textless_items"] == 7 == result.items.height
    assert not result.items["has_text"].any()


def test_reviews_become_interactions_in_file_order(fixtures):
    result = read_toys(fixtures)
    assert len(result.rejects) == 0
    assert result.interactions.rows() == [
        ("AUSER00001", "TOY0000001", 1262304000, 5.0),
        ("AUSER00002", "TOY0000001", 1262390400, 4.0),
        ("AUSER00001", "TOY0000002", 1262476800, 3.0),
        ("AUSER00003", "TOY0000002", 1262563200, 2.0),
        ("AUSER00002", "TOY0000099", 1262649600, 1.0),
    ]


def test_meta_python_literals_become_items(fixtures):
    result = read_toys(fixtures)
    items = {row["item_id"]: row for row in result.items.iter_rows(named=True)}
    assert list(items) == ["TOY0000001", "TOY0000002", "TOY0000003", "TOY0000099"]
    blokko = items["TOY0000001"]
    assert blokko["title"] == "Blokko Stacking Tower & Base"  # &amp; unescaped
    assert blokko["description"] == "Twenty-four blocks, every kid's favourite."
    assert (blokko["brand"], blokko["price"]) == ("Blokko", 19.99)
    assert blokko["categories"] == ["Toys & Games", "Building Toys", "Stacking Blocks"]  # the first breadcrumb
    assert orjson.loads(blokko["attributes"]) == {
        "category_paths": [
            ["Toys & Games", "Building Toys", "Stacking Blocks"],
            ["Toys & Games", "Learning & Education"],
        ],
        "imUrl": "http://example.com/images/blokko.jpg",
        "related": {"also_bought": ["TOY0000002", "TOY0000003"], "bought_together": ["TOY0000003"]},
        "salesRank": {"Toys & Games": 1520},
    }
    assert items["TOY0000002"]["title"] == "Café Play Kitchen"  # u'Caf\xe9 ...'
    assert not items["TOY0000003"]["has_text"]  # a meta record with only an image
    assert not items["TOY0000099"]["has_text"] and result.counters["textless_items"] == 1


def test_malformed_reviews_and_meta_are_rejected(fixtures, rejected):
    result = read_amazon2014(fixtures / "reviews_Toys_5_malformed.json", fixtures / "meta_Toys_malformed.json")
    assert rejected(result.rejects) == [
        ("reviews_Toys_5_malformed.json", 2, "<record>"),  # cut-off JSON
        ("reviews_Toys_5_malformed.json", 3, "asin"),  # missing
        ("reviews_Toys_5_malformed.json", 4, "overall"),  # "five"
        ("reviews_Toys_5_malformed.json", 5, "unixReviewTime"),  # fractional
        ("reviews_Toys_5_malformed.json", 6, "<record>"),  # a list
        ("meta_Toys_malformed.json", 2, "<record>"),  # unterminated string
        ("meta_Toys_malformed.json", 3, "<record>"),  # a call, not a literal
        ("meta_Toys_malformed.json", 4, "asin"),
        ("meta_Toys_malformed.json", 5, "price"),  # 'cheap'
        ("meta_Toys_malformed.json", 6, "categories"),  # flat list instead of breadcrumbs
        ("meta_Toys_malformed.json", 7, "asin"),  # repeated: the first record is kept
        ("meta_Toys_malformed.json", 8, "<record>"),  # a list literal
    ]
    assert result.interactions.select("user_id", "item_id").rows() == [
        ("AUSER00001", "TOY0000001"),
        ("AUSER00007", "TOY0000003"),
    ]
    assert result.items.select("item_id", "title").rows() == [
        ("TOY0000001", "Blokko Stacking Tower"),
        ("TOY0000008", "Orbo Ball"),
        ("TOY0000003", None),
    ]
    assert result.rejects.rows_read[str(fixtures / "reviews_Toys_5_malformed.json")] == 7  # blank line skipped
    assert "not a Python literal" in result.rejects.to_frame()["reason"][6]


def test_meta_code_is_never_run(fixtures, tmp_path, rejected):
    marker = tmp_path / "ran"
    meta = tmp_path / "meta_Toys.json"
    meta.write_text(f"__import__('pathlib').Path({str(marker)!r}).touch()\n{{'asin': 'TOY0000001'}}\n")
    result = read_amazon2014(fixtures / "reviews_Toys_5.json", meta)
    assert not marker.exists()
    assert rejected(result.rejects) == [("meta_Toys.json", 1, "<record>")]


def test_invalid_utf8_is_rejected_in_both_files(fixtures, tmp_path, rejected):
    reviews = tmp_path / "reviews_Toys_5.json"
    reviews.write_bytes((fixtures / "reviews_Toys_5.json").read_bytes().replace(b'"Ben"', b'"B\xffn"', 1))
    meta = tmp_path / "meta_Toys.json"
    meta.write_bytes((fixtures / "meta_Toys.json").read_bytes().replace(b"Pretend Play", b"Pretend \xe9Play"))
    result = read_amazon2014(reviews, meta)
    assert rejected(result.rejects) == [("reviews_Toys_5.json", 2, "<encoding>"), ("meta_Toys.json", 2, "<encoding>")]
    assert result.interactions.height == 4
    assert not result.items.filter(result.items["item_id"] == "TOY0000002")["has_text"].item()


def test_gzip_is_read_and_damaged_files_raise(fixtures, tmp_path, gzipped):
    plain = read_toys(fixtures)
    packed = read_amazon2014(gzipped(fixtures / "reviews_Toys_5.json"), gzipped(fixtures / "meta_Toys.json"))
    assert packed.items.equals(plain.items) and packed.interactions.equals(plain.interactions)
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_amazon2014(fixtures / "reviews_Toys_5.json", gzipped(fixtures / "meta_Toys.json", cut=True))
    with pytest.raises(IngestError, match="file not found"):
        read_amazon2014(tmp_path / "reviews_Absent_5.json")


def test_reading_twice_gives_identical_frames(fixtures):
    def read():
        return read_amazon2014(fixtures / "reviews_Toys_5_malformed.json", fixtures / "meta_Toys_malformed.json")

    first, second = read(), read()
    assert first.items.equals(second.items) and first.interactions.equals(second.interactions)
    assert first.rejects.to_frame().equals(second.rejects.to_frame())

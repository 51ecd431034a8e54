"""S3-Rec/P5 sequences: the real Beauty 5-core against PROVENANCE.md and OpenP5's raw-id file, and fixtures."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.readers.p5 import read_p5_sequences

BEAUTY = "amazon2014-beauty-5core"


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "p5"


@pytest.fixture
def item_file(fixtures_dir: Path) -> Path:
    return fixtures_dir / "recbole" / "toys.item"


def read_beauty(folder: Path, with_attributes: bool = True):
    return read_p5_sequences(
        folder / "Beauty.txt",
        folder / "datamaps.json",
        folder / "Amazon_Beauty.item",
        folder / "Beauty_item2attributes.json" if with_attributes else None,
    )


def attribute_ids(items: pl.DataFrame) -> pl.Series:
    return items["attributes"].map_elements(
        lambda text: orjson.loads(text).get("s3rec_attribute_ids", []), pl.List(pl.Int64)
    )


# --- real data ---------------------------------------------------------------------------------------------------


def test_real_beauty_matches_provenance(shared_data):
    result = read_beauty(shared_data(BEAUTY))
    inter = result.interactions
    assert len(result.rejects) == 0
    assert inter.height == 198_502
    assert inter["user_id"].n_unique() == 22_363 and inter["item_id"].n_unique() == 12_101
    assert inter.group_by("user_id").len()["len"].min() == 5
    assert inter["timestamp"].null_count() == inter["rating"].null_count() == 198_502
    items = result.items
    assert items.height == 12_101 and items["has_text"].all()
    assert result.counters["textless_items"] == 0
    assert items["title"].null_count() == 7
    assert items["source"].unique().to_list() == ["p5"]


def test_real_beauty_sequences_equal_openp5_raw_id_file(shared_data):
    """OpenP5's user_sequence.txt is Beauty.txt mapped through datamaps.json (PROVENANCE checked it line by line)."""
    folder = shared_data(BEAUTY)
    expected = [
        (user, item)
        for user, *items in (line.split() for line in (folder / "user_sequence.txt").read_text().splitlines())
        for item in items
    ]
    assert read_beauty(folder, with_attributes=False).interactions.select("user_id", "item_id").rows() == expected


def test_real_beauty_s3rec_attribute_ids(shared_data):
    items = read_beauty(shared_data(BEAUTY)).items
    ids = attribute_ids(items)
    assert (ids.list.len() > 0).all()
    assert ids.list.len().sum() == 45_037  # 3.72 per item (PROVENANCE)
    assert ids.explode().n_unique() == 637
    # S3-Rec derived them from brand + categories: items of one brand share an attribute id. A wrong id map
    # (e.g. off by one) breaks that: shuffled ids share one in only ~80 of the ~980 multi-item brands.
    brands = items.with_columns(ids=ids).filter(pl.col("brand").is_not_null()).group_by("brand").agg("ids")
    sharing = sum(bool(set(lists[0]).intersection(*lists[1:])) for lists in brands["ids"] if len(lists) > 1)
    assert sharing > 800


# --- fixtures ----------------------------------------------------------------------------------------------------


def test_fixture_sequences_map_to_raw_ids(fixtures, item_file):
    result = read_p5_sequences(
        fixtures / "Toys.txt", fixtures / "datamaps.json", item_file, fixtures / "item2attributes.json"
    )
    assert len(result.rejects) == 0
    assert result.interactions.select("user_id", "item_id").rows() == [
        ("UAAAA00001", "TOY0000001"),
        ("UAAAA00001", "TOY0000002"),
        ("UAAAA00001", "TOY0000003"),
        ("UBBBB00002", "TOY0000002"),
        ("UBBBB00002", "TOY0000004"),
        ("UBBBB00002", "TOY0000005"),
        ("UBBBB00002", "TOY0000006"),
        ("UCCCC00003", "TOY0000006"),
        ("UCCCC00003", "TOY0000001"),
        ("UCCCC00003", "TOY0000099"),
    ]
    assert result.counters["textless_items"] == 1  # item 7 -> TOY0000099 is not in toys.item
    attributes = dict(result.items.select("item_id", "attributes").iter_rows())
    assert orjson.loads(attributes["TOY0000004"]) == {
        "s3rec_attribute_ids": [1, 6, 7],
        "sales_rank": 4051.0,
        "sales_type": "Sports & Outdoors",
    }
    assert attributes["TOY0000099"] == "{}"


def test_malformed_sequences_are_rejected_whole(fixtures, item_file, rejected):
    result = read_p5_sequences(fixtures / "Toys_malformed.txt", fixtures / "datamaps.json", item_file)
    assert rejected(result.rejects) == [
        ("Toys_malformed.txt", 2, "item_id"),  # item 99 is not in datamaps
        ("Toys_malformed.txt", 3, "user_id"),  # user "x"
        ("Toys_malformed.txt", 4, "item_id"),  # a user with no items
    ]
    assert result.interactions.select("user_id", "item_id").rows() == [
        ("UAAAA00001", "TOY0000001"),
        ("UAAAA00001", "TOY0000002"),
        ("UAAAA00001", "TOY0000003"),
        ("UDDDD00004", "TOY0000006"),
        ("UDDDD00004", "TOY0000001"),
    ]
    assert result.rejects.rows_read[str(fixtures / "Toys_malformed.txt")] == 5  # the blank line is no row


def test_malformed_datamaps_and_attributes_are_rejected(fixtures, item_file, rejected):
    datamaps, attributes = fixtures / "datamaps_malformed.json", fixtures / "item2attributes_malformed.json"
    result = read_p5_sequences(fixtures / "Toys.txt", datamaps, item_file, attributes)
    assert rejected(result.rejects) == [
        ("datamaps_malformed.json", 2, "id2user"),  # 17 is not a string
        ("datamaps_malformed.json", 4, "id2user"),  # blank
        ("datamaps_malformed.json", 4, "id2item"),  # null
        ("Toys.txt", 2, "user_id"),  # user 2 lost its raw id
        ("Toys.txt", 3, "item_id"),  # items 6 and 7 are not in this datamaps
        ("item2attributes_malformed.json", 2, "s3rec_attribute_ids"),
        ("item2attributes_malformed.json", 3, "item_id"),
        ("item2attributes_malformed.json", 4, "s3rec_attribute_ids"),
    ]
    assert result.interactions["user_id"].unique().to_list() == ["UAAAA00001"]
    attributes = dict(result.items.select("item_id", "attributes").iter_rows())
    assert orjson.loads(attributes["TOY0000001"])["s3rec_attribute_ids"] == [1, 2]


def test_invalid_utf8_line_is_rejected(fixtures, item_file, tmp_path, rejected):
    damaged = tmp_path / "Toys.txt"
    damaged.write_bytes(b"1 1 2 3\n2 2 \xff4 5\n3 6 1\n")
    result = read_p5_sequences(damaged, fixtures / "datamaps.json", item_file)
    assert rejected(result.rejects) == [("Toys.txt", 2, "<encoding>")]
    assert result.interactions["user_id"].unique(maintain_order=True).to_list() == ["UAAAA00001", "UCCCC00003"]


def test_invalid_utf8_in_datamaps_rejects_only_that_entry(fixtures, item_file, tmp_path, rejected):
    text = (fixtures / "datamaps.json").read_bytes()
    damaged = tmp_path / "datamaps.json"
    damaged.write_bytes(text.replace(b'"UCCCC00003"', b'"UCCCC\xff0003"'))
    result = read_p5_sequences(fixtures / "Toys.txt", damaged, item_file)
    assert rejected(result.rejects) == [("datamaps.json", 3, "<encoding>"), ("Toys.txt", 3, "user_id")]
    assert result.interactions.height == 7


def test_damaged_files_raise(fixtures, item_file, tmp_path, gzipped):
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_p5_sequences(gzipped(fixtures / "Toys.txt", cut=True), fixtures / "datamaps.json", item_file)
    bad_json = tmp_path / "datamaps.json"
    bad_json.write_text('{"id2user": {"1": "UAAAA00001",\n "2": }, "id2item": {}}')
    with pytest.raises(IngestError, match=r"datamaps.json:2: JSON parse error"):
        read_p5_sequences(fixtures / "Toys.txt", bad_json, item_file)
    no_items = tmp_path / "no_items.json"
    no_items.write_text('{"id2user": {"1": "UAAAA00001"}}')
    with pytest.raises(IngestError, match="no id2item object"):
        read_p5_sequences(fixtures / "Toys.txt", no_items, item_file)
    with pytest.raises(IngestError, match="file not found"):
        read_p5_sequences(tmp_path / "absent.txt", fixtures / "datamaps.json", item_file)


def test_gzipped_sequences_read_the_same(fixtures, item_file, gzipped):
    plain = read_p5_sequences(fixtures / "Toys.txt", fixtures / "datamaps.json", item_file)
    packed = read_p5_sequences(gzipped(fixtures / "Toys.txt"), fixtures / "datamaps.json", item_file)
    assert packed.interactions.equals(plain.interactions) and packed.items.equals(plain.items)

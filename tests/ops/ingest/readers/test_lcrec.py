"""LC-Rec/LETTER processed files (no real copy exists offline): hand-written fixtures in the documented format."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.readers.lcrec import read_lcrec


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "lcrec"


def read_toys(fixtures: Path):
    return read_lcrec(fixtures / "Toys.inter.json", fixtures / "Toys.item.json")


def test_interactions_keep_each_users_order_with_string_ids(fixtures):
    result = read_toys(fixtures)
    assert len(result.rejects) == 0
    assert result.interactions.select("user_id", "item_id").rows() == [
        ("0", "0"), ("0", "1"), ("0", "2"), ("1", "1"), ("1", "3"), ("2", "4"), ("2", "0"), ("2", "5"),
    ]  # fmt: skip
    assert result.interactions["timestamp"].null_count() == 8


def test_items_text_breadcrumbs_and_producer_artefacts(fixtures):
    result = read_toys(fixtures)
    items = {row["item_id"]: row for row in result.items.iter_rows(named=True)}
    assert list(items) == ["0", "1", "2", "3", "4", "5"]
    assert items["0"]["categories"] == ["Toys & Games", "Building Toys", "Stacking Blocks"]
    # "," without a space separates levels; ", " belongs to the category name
    assert items["1"]["categories"] == ["Toys & Games", "Outdoor Play", "Kites, Flying Toys & Wind Spinners"]
    # title_3/description_3 are the producer's placeholders for an item without text
    assert (items["2"]["title"], items["2"]["description"], items["2"]["has_text"]) == (None, None, False)
    assert result.counters["placeholder_text_items"] == 1
    # "." is what the producer writes for empty text; text is not unescaped a second time
    assert items["3"]["description"] is None and items["3"]["title"] == "Pip Puzzle &amp; Board."
    assert items["4"]["description"] == "Café-sized ball."
    assert orjson.loads(items["4"]["attributes"]) == {"imageURL": "http://example.com/orbo.jpg"}
    # item 5 is used by user 2 but missing from item.json
    assert result.counters["textless_items"] == 1 and not items["5"]["has_text"]
    assert {row["source"] for row in items.values()} == {"lcrec"}


def test_malformed_entries_are_rejected_with_position_and_field(fixtures, rejected):
    result = read_lcrec(fixtures / "Toys_malformed.inter.json", fixtures / "Toys_malformed.item.json")
    assert rejected(result.rejects) == [
        ("Toys_malformed.inter.json", 2, "item_ids"),  # "two"
        ("Toys_malformed.inter.json", 3, "user_id"),  # "x"
        ("Toys_malformed.inter.json", 4, "item_ids"),  # no items
        ("Toys_malformed.inter.json", 5, "item_ids"),  # true is not an index
        ("Toys_malformed.inter.json", 7, "user_id"),  # negative
        ("Toys_malformed.item.json", 2, "<record>"),  # a string, not an object
        ("Toys_malformed.item.json", 3, "title"),  # 5
        ("Toys_malformed.item.json", 4, "item_id"),  # "b"
    ]
    assert result.interactions.select("user_id", "item_id").rows() == [("0", "0"), ("0", "1"), ("5", "3"), ("5", "0")]
    assert result.items.select("item_id", "title").rows() == [("0", "Good Ball."), ("3", "Good Kite."), ("1", None)]
    assert result.rejects.rows_read[str(fixtures / "Toys_malformed.inter.json")] == 7


def test_invalid_utf8_rejects_only_its_item(fixtures, tmp_path, rejected):
    damaged = tmp_path / "Toys.item.json"
    damaged.write_bytes((fixtures / "Toys.item.json").read_bytes().replace(b"Nimbus Delta", b"Nimbus \xffDelta"))
    result = read_lcrec(fixtures / "Toys.inter.json", damaged)
    assert rejected(result.rejects) == [("Toys.item.json", 2, "<encoding>")]
    titles = dict(result.items.select("item_id", "title").iter_rows())
    assert titles["0"] == "Blokko Stacking Tower." and titles["1"] is None  # item 1 is now a placeholder
    assert result.counters["textless_items"] == 2


def test_damaged_files_raise(fixtures, tmp_path, gzipped):
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_lcrec(gzipped(fixtures / "Toys.inter.json", cut=True), fixtures / "Toys.item.json")
    broken = tmp_path / "broken.item.json"
    broken.write_text('{\n  "0": {"title": "A"},\n  "1": {"title" "B"}\n}\n')  # no colon on line 3
    with pytest.raises(IngestError, match=r"broken.item.json:3: JSON parse error"):
        read_lcrec(fixtures / "Toys.inter.json", broken)
    listed = tmp_path / "listed.inter.json"
    listed.write_text("[[0, 1], [1, 2]]")
    with pytest.raises(IngestError, match="expected a JSON object at the top level, got list"):
        read_lcrec(listed, fixtures / "Toys.item.json")
    with pytest.raises(IngestError, match="file not found"):
        read_lcrec(tmp_path / "absent.inter.json", fixtures / "Toys.item.json")


def test_gzipped_files_read_the_same_and_twice_the_same(fixtures, gzipped):
    plain = read_toys(fixtures)
    packed = read_lcrec(gzipped(fixtures / "Toys.inter.json"), gzipped(fixtures / "Toys.item.json"))
    assert packed.items.equals(plain.items) and packed.interactions.equals(plain.interactions)
    assert read_toys(fixtures).items.equals(plain.items)

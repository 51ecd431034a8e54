"""RecBole atomic files: the real Beauty ``.item`` and 10-core ``.inter`` against PROVENANCE.md, and fixtures."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.frames import attributes_json
from ops.ingest.readers.recbole import read_recbole, read_recbole_items
from ops.ingest.rejects import RejectLog

BEAUTY = "amazon2014-beauty-5core"


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "recbole"


def with_blank_line(source: Path, target: Path) -> Path:
    """A copy of ``source`` with a blank line after the header: valid, but only the `csv` parser accepts it."""
    header, rest = source.read_bytes().split(b"\n", 1)
    target.write_bytes(header + b"\n\n" + rest)
    return target


# --- real data ---------------------------------------------------------------------------------------------------


def test_real_beauty_items_match_provenance(shared_data):
    rejects = RejectLog()
    items, duplicates = read_recbole_items(shared_data(BEAUTY) / "Amazon_Beauty.item", rejects)
    assert len(rejects) == 0 and duplicates == 0
    assert items.height == 12_101 and items["item_id"].n_unique() == 12_101
    assert items["title"].null_count() == 7  # PROVENANCE: 7 empty titles
    assert items["brand"].null_count() == 2_098 and items["price"].null_count() == 585
    assert items["has_text"].all()  # the 7 title-less items still have categories
    assert items["source"].unique().to_list() == ["recbole"]
    assert not items["title"].str.contains("&amp;|&quot;|&#39;").any()


def test_real_beauty_quoted_newline_and_tab_titles_stay_one_row(shared_data):
    items, _ = read_recbole_items(shared_data(BEAUTY) / "Amazon_Beauty.item", RejectLog())
    titles = dict(items.select("item_id", "title").iter_rows())
    assert titles["B0001ZYL3Q"] == "TheraNeem Cream - Original Organix South 2 oz Cream \nVanilla"
    assert titles["B000SDI6MI"].startswith("- \t DESIGNER SKIN ANGEL KIWI PEAR")
    assert titles["B008UAIM52"].startswith("350BUY \t 1200pcs Nail Art")
    # the rows after them are intact
    assert titles["B000SGQWY4"].startswith("YSL Touche Eclat Mascara")
    assert titles["B008UBEABQ"].startswith("Winstonia 8pcs Set Double Ended")


def test_real_beauty_categories_with_apostrophes_and_entities(shared_data):
    items, _ = read_recbole_items(shared_data(BEAUTY) / "Amazon_Beauty.item", RejectLog())
    categories = dict(items.select("item_id", "categories").iter_rows())
    assert categories["9788072216"] == ["Beauty", "Fragrance", "Women's", "Eau de Parfum"]
    assert categories["9759091062"] == ["Beauty", "Hair Care", "Styling Products", "Creams, Gels & Lotions"]
    sales_types = items["attributes"].map_elements(lambda text: orjson.loads(text).get("sales_type"), pl.String)
    assert (sales_types == "Home & Kitchen").sum() == 71  # written "Home &amp; Kitchen" in the file
    assert sales_types.null_count() == 286


def test_real_beauty_attributes_are_canonical_json(shared_data):
    """The vectorized attributes equal `attributes_json` of the same fields, row by row."""
    items, _ = read_recbole_items(shared_data(BEAUTY) / "Amazon_Beauty.item", RejectLog())
    for text in items["attributes"].head(500):
        assert text == attributes_json(orjson.loads(text))


def test_real_beauty_careful_parser_gives_the_same_items(shared_data, tmp_path):
    source = shared_data(BEAUTY) / "Amazon_Beauty.item"
    fast_rejects, careful_rejects = RejectLog(), RejectLog()
    fast, _ = read_recbole_items(source, fast_rejects)
    careful_source = with_blank_line(source, tmp_path / "Amazon_Beauty.item")
    careful, _ = read_recbole_items(careful_source, careful_rejects)
    assert careful.equals(fast)
    assert careful_rejects.rows_read[str(careful_source)] == fast_rejects.rows_read[str(source)] == 12_101


def test_real_beauty_10core_inter_matches_provenance(shared_data):
    folder = shared_data(BEAUTY)
    result = read_recbole(folder / "amazon-beauty.inter.filtered", folder / "Amazon_Beauty.item")
    inter = result.interactions
    assert len(result.rejects) == 0
    assert inter.height == 28_798
    assert inter["user_id"].n_unique() == 1_340 and inter["item_id"].n_unique() == 733
    ratings = dict(inter["rating"].value_counts().iter_rows())
    assert ratings == {5.0: 13_766, 4.0: 8_808, 3.0: 4_110, 2.0: 1_528, 1.0: 586}
    assert (inter["timestamp"] % 86_400 == 0).all()
    assert inter["timestamp"].min() == 1_113_350_400  # 2005-04-13 UTC
    assert inter["timestamp"].max() == 1_406_073_600  # 2014-07-23 UTC
    per_user = inter.group_by("user_id").len()["len"]
    assert (per_user.min(), per_user.max()) == (10, 179)
    assert result.counters["textless_items"] == 0 and result.items.height == 12_101
    assert inter.row(0) == ("A6VPK7X53QNAQ", "B0000CC64W", 1_245_283_200, 5.0)


# --- fixtures ----------------------------------------------------------------------------------------------------


def test_item_columns_are_found_by_name(fixtures):
    items, _ = read_recbole_items(fixtures / "toys.item", RejectLog())
    rows = {row["item_id"]: row for row in items.iter_rows(named=True)}
    assert list(rows) == [f"TOY000000{n}" for n in range(1, 7)]
    first = rows["TOY0000001"]
    assert (first["title"], first["brand"], first["price"]) == ("Blokko Stacking Tower, 24 Pieces", "Blokko", 19.99)
    assert first["categories"] == ["Toys & Games", "Building Toys", "Stacking Blocks"]
    assert orjson.loads(first["attributes"]) == {"color": "red", "sales_rank": 1520.0, "sales_type": "Toys & Games"}
    assert rows["TOY0000002"]["categories"] == ["Toys & Games", "Kids' Furniture", "Chairs"]
    assert rows["TOY0000002"]["title"] == 'Little Reader Chair "Owl"'
    assert rows["TOY0000002"]["brand"] is None
    assert rows["TOY0000003"]["title"] == 'Pip Puzzle "Ocean" 100 pieces' and rows["TOY0000003"]["brand"] == "Pip & Co"
    assert rows["TOY0000003"]["categories"] == ["Toys & Games", "Puzzles & Brain Teasers"]
    assert rows["TOY0000003"]["price"] is None
    assert rows["TOY0000004"]["title"] == "Nimbus Delta Kite\nRainbow"
    assert rows["TOY0000005"]["title"] == "Nimbus Box Kite -\t Large"
    assert rows["TOY0000006"]["title"] is None and rows["TOY0000006"]["has_text"]


def test_inter_with_reordered_header_and_unknown_item(fixtures):
    result = read_recbole(fixtures / "toys.inter", fixtures / "toys.item")
    assert len(result.rejects) == 0
    assert result.interactions.rows() == [
        ("U0000001", "TOY0000001", 1262304000, 5.0),
        ("U0000001", "TOY0000004", 1262390400, 4.0),
        ("U0000001", "TOY0000099", 1262476800, 3.0),
        ("U0000002", "TOY0000002", 1262304000, 2.0),
        ("U0000002", "TOY0000001", 1265068800, 1.0),
        ("U0000003", "TOY0000006", 1262563200, 5.0),
    ]
    assert result.counters["textless_items"] == 1
    placeholder = result.items.filter(pl.col("item_id") == "TOY0000099").row(0, named=True)
    assert not placeholder["has_text"] and placeholder["title"] is None


def test_bad_values_are_rejected_with_their_line(fixtures, rejected):
    """Parsed by polars: the rows the getters refuse are rejected, the others kept."""
    result = read_recbole(fixtures / "toys_values.inter", fixtures / "toys.item")
    assert rejected(result.rejects) == [
        ("toys_values.inter", 3, "timestamp"),
        ("toys_values.inter", 4, "user_id"),
        ("toys_values.inter", 5, "rating"),
        ("toys_values.inter", 6, "user_id"),
    ]
    assert result.interactions.select("user_id", "item_id").rows() == [
        ("U0000001", "TOY0000001"),
        ("U0000004", "TOY0000005"),
    ]
    assert result.rejects.rows_read[str(fixtures / "toys_values.inter")] == 6


def test_reject_lines_count_quoted_line_breaks(fixtures, rejected):
    """Parsed by polars: a quoted line break in line 2-3 moves every later record one line down."""
    rejects = RejectLog()
    items, _ = read_recbole_items(fixtures / "toys_values.item", rejects)
    assert rejected(rejects) == [
        ("toys_values.item", 4, "price"),  # nan
        ("toys_values.item", 6, "item_id"),  # missing
        ("toys_values.item", 7, "item_id"),  # repeated
    ]
    assert items.select("item_id", "title").rows() == [
        ("TOY0000021", "Kite with\ntwo lines"),
        ("TOY0000023", "Tab\tKite"),
    ]


def test_broken_rows_are_rejected_by_the_careful_parser(fixtures, rejected):
    result = read_recbole(fixtures / "toys_broken.inter", fixtures / "toys.item")
    assert rejected(result.rejects) == [("toys_broken.inter", 3, "rating"), ("toys_broken.inter", 4, "<record>")]
    assert result.interactions.rows() == [
        ("U0000001", "TOY0000001", 1262304000, 5.0),
        ("U0000004", 'TOY"5', 1262476800, 4.0),  # a quote inside an unquoted field is text
        ("U0000005", "TOY0000006", 1262563200, 2.0),  # "1_262_563_200" is a number to the getters
    ]


def test_malformed_item_rows_are_rejected(fixtures, rejected):
    rejects = RejectLog()
    items, _ = read_recbole_items(fixtures / "toys_malformed.item", rejects)
    assert rejected(rejects) == [
        ("toys_malformed.item", 3, "price"),
        ("toys_malformed.item", 4, "item_id"),
        ("toys_malformed.item", 5, "<record>"),
        ("toys_malformed.item", 8, "sales_rank"),
        ("toys_malformed.item", 9, "item_id"),  # repeated item_id: the first row is kept
    ]
    assert items.select("item_id", "title").rows() == [
        ("TOY0000011", "Good Kite"),
        ("TOY0000015", "Two Line\nKite"),
        ("TOY0000017", "Last Kite"),
    ]


def test_invalid_utf8_is_rejected(fixtures, tmp_path, rejected):
    lines = (fixtures / "toys.inter").read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"U0000001", b"U\xff\xfe0001")
    damaged = tmp_path / "toys.inter"
    damaged.write_bytes(b"\n".join(lines))
    result = read_recbole(damaged, fixtures / "toys.item")
    assert rejected(result.rejects) == [("toys.inter", 3, "<encoding>")]
    assert "U�" in result.rejects.to_frame()["raw"][0]
    assert result.interactions.height == 5


def test_blank_line_changes_nothing_but_the_parser(fixtures, tmp_path):
    source = fixtures / "toys.item"
    careful, _ = read_recbole_items(with_blank_line(source, tmp_path / "toys.item"), RejectLog())
    assert careful.equals(read_recbole_items(source, RejectLog())[0])


def test_gzip_is_read_and_truncated_gzip_raises(fixtures, gzipped):
    plain = read_recbole(fixtures / "toys.inter", fixtures / "toys.item")
    packed = read_recbole(gzipped(fixtures / "toys.inter"), fixtures / "toys.item")
    assert packed.interactions.equals(plain.interactions)
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_recbole(gzipped(fixtures / "toys.inter", cut=True), fixtures / "toys.item")


def test_missing_file_and_missing_id_column_raise(fixtures, tmp_path):
    with pytest.raises(IngestError, match="file not found"):
        read_recbole(tmp_path / "absent.inter", fixtures / "toys.item")
    headless = tmp_path / "no_item_id.item"
    headless.write_text("title:token\tprice:float\nA kite\t1.0\n")
    with pytest.raises(IngestError, match=r"no_item_id.item:1: header has no item_id column"):
        read_recbole_items(headless, RejectLog())


def test_reading_twice_gives_identical_frames(fixtures):
    first = read_recbole(fixtures / "toys.inter", fixtures / "toys.item")
    second = read_recbole(fixtures / "toys.inter", fixtures / "toys.item")
    assert first.items.equals(second.items) and first.interactions.equals(second.interactions)

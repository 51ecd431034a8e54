"""H&M reader: the real pandas re-export sample against its PROVENANCE counts, both layouts, damaged rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.ingest.errors import IngestError
from ops.ingest.readers.hm import read_hm


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "hm"


def midnight(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())


def test_real_sample_matches_provenance(shared_data):
    folder = shared_data("hm-sample")
    result = read_hm(folder / "articles.csv", folder / "transactions_train.csv")
    items, interactions = result.items, result.interactions
    assert len(result.rejects) == 0
    assert result.rejects.rows_read[str(folder / "articles.csv")] == 4903
    assert result.rejects.rows_read[str(folder / "transactions_train.csv")] == 10_000
    assert items.height == 4903 and items["item_id"].n_unique() == 4903
    assert (items["item_id"].str.len_bytes() == 10).all()  # leading zeros restored
    assert "0108775015" in items["item_id"].to_list()
    assert items["description"].null_count() == 57
    assert items["has_text"].all() and (items["categories"].list.len() == 4).all()
    # 910 rows repeat an earlier row in every field (a multi-unit purchase): one interaction each
    assert interactions.height == 10_000 - 910 and interactions["user_id"].n_unique() == 2954
    assert interactions["item_id"].n_unique() == 4903
    assert result.counters == {  # every bought article is known
        "duplicate_items_dropped": 0,
        "duplicate_transactions_dropped": 910,
        "textless_items": 0,
    }
    assert interactions["timestamp"].unique().to_list() == [midnight("2018-09-20")]


def test_both_layouts_give_identical_tables(fixtures):
    original = read_hm(fixtures / "original/articles.csv", fixtures / "original/transactions_train.csv")
    reexport = read_hm(fixtures / "reexport/articles.csv", fixtures / "reexport/transactions_train.csv")
    assert original.items.equals(reexport.items)
    assert original.interactions.equals(reexport.interactions)
    assert len(original.rejects) == len(reexport.rejects) == 0


def test_fixture_items_and_interactions(fixtures):
    result = read_hm(fixtures / "reexport/articles.csv", fixtures / "reexport/transactions_train.csv")
    rows = {row["item_id"]: row for row in result.items.to_dicts()}
    assert list(rows) == ["0900000001", "0900000002", "0012345001", "0777000001"]
    tee = rows["0900000001"]
    assert tee["title"] == "Trail runner tee"
    assert tee["description"] == "Fitted top in fast-drying jersey, with reflective details."  # quoted comma
    assert tee["categories"] == ["Sport", "Ladies H&M Sport", "Garment Upper body", "T-shirt"]
    assert tee["attributes"] == (
        '{"colour_group_name":"Black","department_name":"Sport Tops","garment_group_name":"Jersey Fancy",'
        '"graphical_appearance_name":"Solid","index_name":"Sport","perceived_colour_master_name":"Black",'
        '"perceived_colour_value_name":"Dark","product_code":"0900000"}'
    )
    assert rows["0900000002"]["description"] == "Fitted top in fast-drying jersey. Machine wash at 40 degrees."
    assert rows["0012345001"]["description"] is None  # empty detail_desc
    assert rows["0777000001"]["has_text"] is False  # bought, not in articles.csv
    a, b = "0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2, "aa11bb22cc33dd44ee55ff6600778899" * 2
    assert result.interactions.rows() == [
        (a, "0900000001", midnight("2018-09-20"), None),
        (b, "0012345001", midnight("2018-09-20"), None),
        (a, "0900000002", midnight("2018-09-21"), None),
        (b, "0777000001", midnight("2018-09-21"), None),
    ]
    assert result.counters == {"duplicate_items_dropped": 0, "duplicate_transactions_dropped": 0, "textless_items": 1}


def test_reading_twice_gives_identical_frames(fixtures):
    first = read_hm(fixtures / "reexport/articles.csv", fixtures / "reexport/transactions_train.csv")
    second = read_hm(fixtures / "reexport/articles.csv", fixtures / "reexport/transactions_train.csv")
    assert first.items.equals(second.items) and first.interactions.equals(second.interactions)


def test_malformed_article_rows_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    lines = (fixtures / "reexport/articles.csv").read_bytes().splitlines()  # header, 41, 42 (2 lines), 7
    articles = tmp_path / "articles.csv"
    articles.write_bytes(
        b"\n".join(
            [
                lines[0],
                lines[1].replace(b"41,900000001,", b"41,9000000X1,"),  # 2: not an id
                lines[2],  # 3-4: a quoted newline inside detail_desc
                lines[3],
                lines[4].replace(b"Wool socks", b"Wool \xff socks"),  # 5: invalid UTF-8
                lines[4].rsplit(b",", 2)[0],  # 6: two columns short
                lines[4].replace(b"7,12345001,", b"8,12345002,"),  # 7: good
                lines[4].replace(b"7,12345001,", b"9,,"),  # 8: no article id
            ]
        )
        + b"\n"
    )
    result = read_hm(articles, fixtures / "reexport/transactions_train.csv")
    assert rejected(result.rejects) == [
        ("articles.csv", 5, "<encoding>"),
        ("articles.csv", 6, "<columns>"),
        ("articles.csv", 2, "article_id"),
        ("articles.csv", 8, "article_id"),
    ]
    assert result.items.filter("has_text")["item_id"].to_list() == ["0900000002", "0012345002"]
    assert result.rejects.rows_read[str(articles)] == 6  # records, not lines: 3-4 is one


def test_malformed_transaction_rows_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    lines = (fixtures / "original/transactions_train.csv").read_bytes().splitlines()
    transactions = tmp_path / "transactions_train.csv"
    transactions.write_bytes(
        b"\n".join(
            [
                lines[0],
                lines[1].replace(b"2018-09-20", b"2018-13-40"),  # 2: no such date
                lines[2].replace(b"aa11bb22", b"").replace(b"cc33dd44ee55ff6600778899" * 2, b""),  # 3: no customer
                lines[3].replace(b",0900000002,", b",09-0000002,"),  # 4: not an id
                lines[4] + b",extra",  # 5: a column too many
                lines[1].replace(b"2018-09-20", b"2018\xa009-20"),  # 6: invalid UTF-8
                lines[3],  # 7: good
            ]
        )
    )
    result = read_hm(fixtures / "original/articles.csv", transactions)
    assert sorted(rejected(result.rejects)) == [
        ("transactions_train.csv", 2, "t_dat"),
        ("transactions_train.csv", 3, "customer_id"),
        ("transactions_train.csv", 4, "article_id"),
        ("transactions_train.csv", 5, "<columns>"),
        ("transactions_train.csv", 6, "<encoding>"),
    ]
    assert result.interactions.select("item_id", "timestamp").rows() == [("0900000002", midnight("2018-09-21"))]


def test_header_without_required_columns_raises_ingest_error(fixtures, tmp_path):
    transactions = tmp_path / "transactions_train.csv"
    transactions.write_text("day,customer_id,article_id\n2018-09-20,abc,0900000001\n")
    with pytest.raises(IngestError, match=r"missing columns \['t_dat'\]") as error:
        read_hm(fixtures / "original/articles.csv", transactions)
    assert error.value.line == 1


def test_truncated_gzip_raises_ingest_error(fixtures, gzipped):
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_hm(gzipped(fixtures / "original/articles.csv", cut=True), fixtures / "original/transactions_train.csv")

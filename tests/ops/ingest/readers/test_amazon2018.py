"""Amazon 2018 reader: real 5-core/meta files against their PROVENANCE counts, hand-written fixtures, damaged input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.fields import parse_price
from ops.ingest.readers.amazon2018 import read_amazon2018

REVIEWS = "Tiny_Outdoor_5.json"
META_2020 = "meta_Tiny_Outdoor.json"
META_2021 = "meta_Tiny_Outdoor_2021.json"


@pytest.fixture
def fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "amazon2018"


# --- real data ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "reviews", "n_reviews", "n_users", "n_items", "duplicates", "first_time", "last_time"),
    [
        ("amazon2018-gift-cards", "Gift_Cards_5.json.gz", 2972, 458, 148, 0, 1327968000, 1534896000),
        (
            "amazon2018-magazine-subscriptions",
            "Magazine_Subscriptions_5.json.gz",
            2375,
            348,
            157,
            44,
            1005523200,
            1526774400,
        ),
        ("amazon2018-all-beauty-5core", "All_Beauty_5.json.gz", 5269, 991, 85, 1053, 1095724800, 1534982400),
        ("amazon2018-amazon-fashion-5core", "AMAZON_FASHION_5.json.gz", 3176, 406, 31, 89, 1261699200, 1530748800),
    ],
)
def test_real_reviews_match_provenance(
    shared_data, folder, reviews, n_reviews, n_users, n_items, duplicates, first_time, last_time
):
    result = read_amazon2018(shared_data(folder) / reviews)
    interactions = result.interactions
    assert len(result.rejects) == 0
    assert result.rejects.rows_read[str(shared_data(folder) / reviews)] == n_reviews
    assert result.counters["duplicate_reviews_dropped"] == duplicates
    assert interactions.height == n_reviews - duplicates
    assert interactions["user_id"].n_unique() == n_users
    assert interactions["item_id"].n_unique() == n_items
    assert (interactions["timestamp"].min(), interactions["timestamp"].max()) == (first_time, last_time)
    assert interactions["rating"].is_between(1, 5).all()
    # without meta every reviewed item is a text-less placeholder
    assert result.counters["textless_items"] == n_items == result.items.height
    assert not result.items["has_text"].any()


def test_real_gift_cards_meta_matches_provenance(shared_data):
    folder = shared_data("amazon2018-gift-cards")
    result = read_amazon2018(folder / "Gift_Cards_5.json.gz", folder / "meta_Gift_Cards.json.gz")
    items = result.items
    assert len(result.rejects) == 0
    assert items.height == 1547 and items["item_id"].n_unique() == 1547
    assert result.counters["duplicate_items_dropped"] == 0
    assert result.counters["textless_items"] == 0  # covers 148/148 5-core items
    reviewed = items.filter(pl.col("item_id").is_in(result.interactions["item_id"].implode()))
    assert reviewed.height == 148 and reviewed["has_text"].all()
    assert items["title"].count() == 1547
    assert items["brand"].count() == 527
    # 362 non-empty prices: plain amounts parsed, the scraped CSS/HTML ones kept raw
    assert items["price"].count() + result.counters["prices_unparsed"] == 362
    assert result.counters["prices_unparsed"] == 4
    assert items.filter(pl.col("attributes").str.contains('"price_raw"')).height == 4
    # 805 items have a description, 125 more only feature bullets
    assert items["description"].count() == 930


@pytest.mark.parametrize(
    "meta", ["meta_Magazine_Subscriptions.json.gz", "alt-meta-2020-08/meta_Magazine_Subscriptions.json.gz"]
)
def test_real_magazine_meta_matches_provenance(shared_data, meta):
    folder = shared_data("amazon2018-magazine-subscriptions")
    result = read_amazon2018(folder / "Magazine_Subscriptions_5.json.gz", folder / meta)
    items, counters = result.items, result.counters
    assert len(result.rejects) == 0
    assert result.rejects.rows_read[str(folder / meta)] == 3385
    assert counters["duplicate_items_dropped"] == 3385 - 2320
    assert counters["textless_items"] == 157 - 151
    assert items.height == 2320 + 6 and items["item_id"].n_unique() == items.height
    assert items.filter(pl.col("has_text")).height == 2320
    # most titles are scraped HTML fragments: none survives as text, none of what survives is markup
    assert counters["titles_without_text"] == 2173
    titles = items["title"].drop_nulls()
    assert titles.len() == 2320 - 2173
    assert not titles.str.contains(r"[<>]|&[a-z]+;").any()
    assert not items["description"].drop_nulls().str.contains(r"<[a-zA-Z/]|&amp;").any()
    # the non-empty prices are all scraped CSS
    assert items["price"].count() == 0 and counters["prices_unparsed"] == 16


def test_real_magazine_releases_differ_only_in_high_res_images(shared_data):
    folder = shared_data("amazon2018-magazine-subscriptions")
    reviews = folder / "Magazine_Subscriptions_5.json.gz"
    old = read_amazon2018(reviews, folder / "alt-meta-2020-08/meta_Magazine_Subscriptions.json.gz").items
    new = read_amazon2018(reviews, folder / "meta_Magazine_Subscriptions.json.gz").items
    assert old.drop("attributes").equals(new.drop("attributes"))
    without_high_res = [
        {key: value for key, value in json.loads(attributes).items() if key != "imageURLHighRes"}
        for attributes in new["attributes"]
    ]
    assert [json.loads(attributes) for attributes in old["attributes"]] == without_high_res


def test_real_meta_attributes_are_canonical_json(shared_data):
    """`attributes_json` (orjson) writes exactly what the stdlib canonical form would."""
    folder = shared_data("amazon2018-gift-cards")
    items = read_amazon2018(folder / "Gift_Cards_5.json.gz", folder / "meta_Gift_Cards.json.gz").items
    for attributes in items["attributes"]:
        canonical = json.dumps(json.loads(attributes), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert attributes == canonical


# --- fixtures ----------------------------------------------------------------------------------------------------


def test_fixture_reviews_drop_style_duplicates_and_keep_file_order(fixtures):
    result = read_amazon2018(fixtures / REVIEWS)
    assert result.interactions.rows() == [
        ("AZZTEST00001", "B0ZTEST001", 1483574400, 5.0),  # line 2 repeats it in another size
        ("AZZTEST00001", "B0ZTEST002", 1483660800, 3.0),  # no reviewText
        ("AZZTEST00002", "B0ZTEST001", 1483747200, 4.0),  # line 6 repeats it in another colour
        ("AZZTEST00002", "B0ZTEST003", 1483833600, 2.0),
        ("AZZTEST00003", "B0ZTEST002", 1483747200, 1.0),  # same text and time, other reviewer: kept
        ("AZZTEST00001", "B0ZTEST001", 1483920000, 5.0),  # same text, other day: kept
    ]
    assert result.counters == {"duplicate_reviews_dropped": 2, "textless_items": 3}


def test_fixture_meta_items(fixtures):
    result = read_amazon2018(fixtures / REVIEWS, fixtures / META_2020)
    items = {row["item_id"]: row for row in result.items.to_dicts()}
    assert list(items) == ["B0ZTEST001", "B0ZTEST002", "B0ZTEST004", "B0ZTEST003"]
    scarf = items["B0ZTEST001"]
    assert scarf["title"] == "Wool Scarf & Hat Set"
    assert scarf["description"] == "A warm scarf and hat, knitted by hand.\n100% wool\nHand wash"
    assert scarf["categories"] == ["Clothing", "Accessories & Scarves"]
    assert (scarf["brand"], scarf["price"]) == ("Northwind", 1025.0)
    assert json.loads(scarf["attributes"]) == {
        "also_buy": ["B0ZTEST002"],
        "details": {"\n    Item Weight: \n    ": "8 ounces", "ASIN: ": "B0ZTEST001"},
        "imageURL": ["https://example.com/img/scarf._SX38_.jpg"],
        "main_cat": "Fashion",
        "rank": "12 in Clothing (",
    }
    html_title = items["B0ZTEST002"]
    assert (html_title["title"], html_title["brand"], html_title["price"]) == (None, None, None)
    assert json.loads(html_title["attributes"])["price_raw"] == ".a-box-inner{background-color:#fff}"
    journal = items["B0ZTEST004"]
    assert journal["title"] is None and journal["description"] == "Quarterly journal of trail maps."
    assert [row["has_text"] for row in items.values()] == [True, True, True, False]
    assert items["B0ZTEST003"]["attributes"] == "{}"
    assert result.counters == {
        "duplicate_items_dropped": 1,
        "titles_without_text": 2,
        "prices_unparsed": 1,
        "duplicate_reviews_dropped": 2,
        "textless_items": 1,
    }


def test_fixture_2021_release_adds_only_high_res_images(fixtures):
    old = read_amazon2018(fixtures / REVIEWS, fixtures / META_2020).items
    new = read_amazon2018(fixtures / REVIEWS, fixtures / META_2021).items
    assert old.drop("attributes").equals(new.drop("attributes"))
    assert json.loads(new["attributes"][0])["imageURLHighRes"] == ["https://example.com/img/scarf.jpg"]
    assert json.loads(new["attributes"][0])["imageURL"] == json.loads(old["attributes"][0])["imageURL"]


def test_gzip_and_plain_files_read_the_same(fixtures, gzipped):
    plain = read_amazon2018(fixtures / REVIEWS, fixtures / META_2020)
    packed = read_amazon2018(gzipped(fixtures / REVIEWS), gzipped(fixtures / META_2020))
    assert plain.items.equals(packed.items) and plain.interactions.equals(packed.interactions)


def test_reading_twice_gives_identical_frames(fixtures):
    first = read_amazon2018(fixtures / REVIEWS, fixtures / META_2020)
    second = read_amazon2018(fixtures / REVIEWS, fixtures / META_2020)
    assert first.items.equals(second.items) and first.interactions.equals(second.interactions)


# --- damaged input -----------------------------------------------------------------------------------------------


def test_malformed_review_lines_are_rejected_with_line_and_field(fixtures, tmp_path, rejected):
    good = (fixtures / REVIEWS).read_bytes().splitlines()
    path = tmp_path / "reviews.json"
    path.write_bytes(
        b"\n".join(
            [
                good[0],
                b'{"overall": 5.0, "reviewerID": "AZZBAD", "asin": ',  # 2: bad JSON
                good[2],
                good[3].replace(b'"reviewerID": "AZZTEST00002", ', b""),  # 4: missing field
                good[4].replace(b'"overall": 2.0', b'"overall": "two"'),  # 5: wrong type
                good[6].replace(b"Nice color.", b"Nice \xff color."),  # 6: invalid UTF-8
                b"[1, 2, 3]",  # 7: JSON but not an object
                b"",  # blank lines are not rows
                good[7],  # 9
            ]
        )
    )
    result = read_amazon2018(path)
    assert rejected(result.rejects) == [
        ("reviews.json", 2, "<record>"),
        ("reviews.json", 4, "reviewerID"),
        ("reviews.json", 5, "overall"),
        ("reviews.json", 6, "<encoding>"),
        ("reviews.json", 7, "<record>"),
    ]
    assert result.rejects.rows_read[str(path)] == 8
    assert result.interactions["timestamp"].to_list() == [1483574400, 1483660800, 1483920000]
    assert "Nice" in result.rejects.to_frame()["raw"][3]


def test_malformed_meta_lines_are_rejected_and_the_rest_kept(fixtures, tmp_path, rejected):
    good = (fixtures / META_2020).read_bytes().splitlines()
    path = tmp_path / "meta.json"
    path.write_bytes(
        b"\n".join(
            [
                good[0],
                good[1].replace(b'"description": []', b'"description": 7'),  # 2: wrong type
                good[3].replace(b', "asin": "B0ZTEST004"', b""),  # 3: no asin
                b'{"asin": "B0ZTEST005", "title": "Trail \xe9 Guide"}',  # 4: latin-1 byte
            ]
        )
    )
    result = read_amazon2018(fixtures / REVIEWS, path)
    assert rejected(result.rejects) == [
        ("meta.json", 2, "description"),
        ("meta.json", 3, "asin"),
        ("meta.json", 4, "<encoding>"),
    ]
    assert result.items.filter(pl.col("has_text"))["item_id"].to_list() == ["B0ZTEST001"]
    assert result.counters["textless_items"] == 2


def test_truncated_gzip_raises_ingest_error(fixtures, gzipped):
    path = gzipped(fixtures / REVIEWS, cut=True)
    with pytest.raises(IngestError, match="truncated or corrupt gzip") as error:
        read_amazon2018(path)
    assert error.value.file == str(path)


def test_missing_meta_file_raises_ingest_error(fixtures, tmp_path):
    with pytest.raises(IngestError, match="file not found"):
        read_amazon2018(fixtures / REVIEWS, tmp_path / "meta_absent.json.gz")


@pytest.mark.parametrize(
    ("raw", "price"),
    [
        ("$25.00", 25.0),
        ("$1,299.99", 1299.99),
        (" $7.99 ", 7.99),
        (12.5, 12.5),
        ("", None),
        ("$5.99 - $12.99", None),  # a range is not one price
        (".a-box-inner{background-color:#fff}", None),
        ("$1,2", None),
        (True, None),
        (-3.0, None),
    ],
)
def test_parse_price(raw, price):
    assert parse_price(raw) == price

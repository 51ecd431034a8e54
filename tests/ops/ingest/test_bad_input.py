"""One policy per kind of bad input, checked on every reader: empty files, BOMs, repeated rows, long fields, NUL ids.

Each case copies the hand-written fixtures of one reader into tmp_path, damages one file and reads the set again.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from ops.ingest.errors import IngestError
from ops.ingest.readers.amazon2014 import read_amazon2014
from ops.ingest.readers.amazon2018 import read_amazon2018
from ops.ingest.readers.amazon2023 import read_amazon2023
from ops.ingest.readers.hm import read_hm
from ops.ingest.readers.lcrec import read_lcrec
from ops.ingest.readers.mind import read_mind
from ops.ingest.readers.p5 import read_p5_sequences
from ops.ingest.readers.recbole import read_recbole
from ops.ingest.result import ReaderResult

BOM = b"\xef\xbb\xbf"
LONG_TEXT = " ".join(["lorem ipsum dolor"] * 120_000)  # ~2 MiB of valid text in one field


@dataclass(frozen=True)
class Case:
    """One reader over its fixture files (role -> path under tests/fixtures)."""

    name: str
    read: Callable[..., ReaderResult]
    files: dict[str, str]
    interactions: str  # role of the file that holds the interactions
    duplicates: str  # counter of the exact duplicate rows dropped from that file
    headers: frozenset[str] = frozenset()  # roles whose first line names the columns
    objects: frozenset[str] = frozenset()  # roles that hold one JSON object
    extra: dict[str, str] = field(default_factory=dict)


CASES = {
    case.name: case
    for case in [
        Case(
            "amazon2014",
            read_amazon2014,
            {"reviews": "amazon2014/reviews_Toys_5.json", "meta": "amazon2014/meta_Toys.json"},
            "reviews",
            "duplicate_reviews_dropped",
        ),
        Case(
            "amazon2018",
            read_amazon2018,
            {"reviews": "amazon2018/Tiny_Outdoor_5.json", "meta": "amazon2018/meta_Tiny_Outdoor.json"},
            "reviews",
            "duplicate_reviews_dropped",
        ),
        Case(
            "amazon2023",
            read_amazon2023,
            {"reviews": "amazon2023/Tiny_Care.jsonl", "meta": "amazon2023/meta_Tiny_Care.jsonl"},
            "reviews",
            "duplicate_reviews_dropped",
        ),
        Case(
            "p5",
            read_p5_sequences,
            {
                "sequences": "p5/Toys.txt",
                "datamaps": "p5/datamaps.json",
                "items": "recbole/toys.item",
                "item2attributes": "p5/item2attributes.json",
            },
            "sequences",
            "duplicate_sequences_dropped",
            headers=frozenset({"items"}),
            objects=frozenset({"datamaps", "item2attributes"}),
        ),
        Case(
            "recbole",
            read_recbole,
            {"inter": "recbole/toys.inter", "items": "recbole/toys.item"},
            "inter",
            "duplicate_interactions_dropped",
            headers=frozenset({"inter", "items"}),
        ),
        Case(
            "mind",
            read_mind,
            {"news": "mind/news.tsv", "behaviors": "mind/behaviors.tsv"},
            "behaviors",
            "duplicate_impressions_dropped",
        ),
        Case(
            "hm",
            read_hm,
            {"articles": "hm/original/articles.csv", "transactions": "hm/original/transactions_train.csv"},
            "transactions",
            "duplicate_transactions_dropped",
            headers=frozenset({"articles", "transactions"}),
        ),
        Case(
            "lcrec",
            read_lcrec,
            {"inter_json": "lcrec/Toys.inter.json", "item_json": "lcrec/Toys.item.json"},
            "inter_json",
            "",
            objects=frozenset({"inter_json", "item_json"}),
        ),
    ]
}
ROLES = [pytest.param(case, role, id=f"{name}-{role}") for name, case in CASES.items() for role in case.files]
SELF_APPENDED = [pytest.param(case, id=name) for name, case in CASES.items() if case.duplicates]


def copied(case: Case, fixtures_dir: Path, folder: Path) -> dict[str, Path]:
    """The case's fixture files copied into ``folder``, by role."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, relative in case.files.items():
        paths[role] = folder / Path(relative).name
        shutil.copyfile(fixtures_dir / relative, paths[role])
    return paths


def tables(result: ReaderResult) -> dict[str, pl.DataFrame | None]:
    return {"items": result.items, "interactions": result.interactions, "impressions": result.impressions}


def assert_same_tables(left: ReaderResult, right: ReaderResult) -> None:
    for name, frame in tables(left).items():
        other = tables(right)[name]
        assert (frame is None and other is None) or frame.equals(other), name


def rewrite(path: Path, old: bytes, new: bytes) -> None:
    content = path.read_bytes()
    assert old in content, f"{old!r} not in {path.name}"
    path.write_bytes(content.replace(old, new))


# --- 3: an empty file fails at once, naming the file -----------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n  \n\r\n", BOM, BOM + b"\n"], ids=["0-bytes", "blank", "bom", "bom-nl"])
@pytest.mark.parametrize("case, role", ROLES)
def test_empty_file_fails_naming_it(case, role, content, fixtures_dir, tmp_path):
    paths = copied(case, fixtures_dir, tmp_path)
    paths[role].write_bytes(content)
    with pytest.raises(IngestError) as error:
        case.read(**paths)
    assert error.value.file == str(paths[role]) and "empty" in error.value.reason


@pytest.mark.parametrize("case, role", [param for param in ROLES if param.values[1] in param.values[0].headers])
def test_header_without_data_rows_fails_naming_the_file(case, role, fixtures_dir, tmp_path):
    paths = copied(case, fixtures_dir, tmp_path)
    paths[role].write_bytes(paths[role].read_bytes().split(b"\n", 1)[0] + b"\n")
    with pytest.raises(IngestError) as error:
        case.read(**paths)
    assert error.value.file == str(paths[role]) and "no data rows" in error.value.reason


EMPTY_OBJECTS = [
    pytest.param(case, role, content, id=f"{name}-{role}-{content.decode()}")
    for name, case in CASES.items()
    for role in sorted(case.objects)
    for content in [b"{}", *([b'{"id2user": {}, "id2item": {}}'] if role == "datamaps" else [])]
]


@pytest.mark.parametrize("case, role, content", EMPTY_OBJECTS)
def test_empty_json_object_fails_naming_the_file(case, role, content, fixtures_dir, tmp_path):
    paths = copied(case, fixtures_dir, tmp_path)
    paths[role].write_bytes(content)
    with pytest.raises(IngestError) as error:
        case.read(**paths)
    assert error.value.file == str(paths[role]) and "empty" in error.value.reason


def test_empty_gzip_stream_fails_naming_the_file(fixtures_dir, tmp_path):
    reviews = tmp_path / "Tiny_Outdoor_5.json.gz"
    reviews.write_bytes(gzip.compress(b""))
    with pytest.raises(IngestError) as error:
        read_amazon2018(reviews, fixtures_dir / "amazon2018/meta_Tiny_Outdoor.json")
    assert error.value.file == str(reviews) and "empty" in error.value.reason


# --- 5: a leading UTF-8 BOM is stripped ------------------------------------------------------------------------


@pytest.mark.parametrize("case, role", ROLES)
def test_leading_bom_reads_like_the_file_without_it(case, role, fixtures_dir, tmp_path):
    plain = copied(case, fixtures_dir, tmp_path / "plain")
    marked = copied(case, fixtures_dir, tmp_path / "bom")
    marked[role].write_bytes(BOM + marked[role].read_bytes())
    expected, result = case.read(**plain), case.read(**marked)
    assert_same_tables(expected, result)
    assert len(result.rejects) == len(expected.rejects)
    assert result.rejects.rows_read[str(marked[role])] == expected.rejects.rows_read[str(plain[role])]


def test_bom_inside_a_gzip_stream_is_stripped(fixtures_dir, tmp_path):
    meta = fixtures_dir / "amazon2018/meta_Tiny_Outdoor.json"
    reviews = tmp_path / "Tiny_Outdoor_5.json.gz"
    reviews.write_bytes(gzip.compress(BOM + (fixtures_dir / "amazon2018/Tiny_Outdoor_5.json").read_bytes()))
    expected, result = (
        read_amazon2018(fixtures_dir / "amazon2018/Tiny_Outdoor_5.json", meta),
        read_amazon2018(reviews, meta),
    )
    assert_same_tables(expected, result)
    assert len(result.rejects) == len(expected.rejects) == 0


# --- 4: a file appended to itself gives the same tables, every repeat counted ------------------------------------


@pytest.mark.parametrize("case", SELF_APPENDED)
def test_self_appended_interactions_file_gives_the_same_tables(case, fixtures_dir, tmp_path):
    plain = copied(case, fixtures_dir, tmp_path / "plain")
    doubled = copied(case, fixtures_dir, tmp_path / "doubled")
    path = doubled[case.interactions]
    content = path.read_bytes().rstrip(b"\n") + b"\n"
    path.write_bytes(content + content)
    expected, result = case.read(**plain), case.read(**doubled)
    assert_same_tables(expected, result)
    rows = expected.rejects.rows_read[str(plain[case.interactions])]
    assert result.counters[case.duplicates] == expected.counters.get(case.duplicates, 0) + rows
    repeated_header = [(str(path), content.count(b"\n") + 1)] if case.interactions in case.headers else []
    assert [(file, line) for file, line, *_ in result.rejects.to_frame().rows()] == repeated_header


# --- 6: a valid 2 MB field parses ------------------------------------------------------------------------------

LONG_FIELDS = {  # case -> (role, text replaced by LONG_TEXT, item id, column)
    "mind": ("news", b"Cover tender plants before dark.", "N1004", "description"),
    "hm": ("articles", b"Fitted top in fast-drying jersey, with reflective details.", "0900000001", "description"),
    "recbole": ("items", b"Blokko Stacking Tower, 24 Pieces", "TOY0000001", "title"),
    "amazon2014": ("meta", b"Twenty-four blocks, every kid's favourite.", "TOY0000001", "description"),
    "amazon2018": ("meta", b"Wool Scarf &amp; Hat Set", "B0ZTEST001", "title"),
    "amazon2023": ("meta", b"Unscented Body Lotion", "B0ZPAR0002", "title"),
    "lcrec": ("item_json", b"A light kite for beginners.", "1", "description"),
}


@pytest.mark.parametrize("name", LONG_FIELDS)
def test_a_two_megabyte_field_parses(name, fixtures_dir, tmp_path):
    case = CASES[name]
    role, old, item_id, column = LONG_FIELDS[name]
    paths = copied(case, fixtures_dir, tmp_path)
    rewrite(paths[role], old, LONG_TEXT.encode())
    result = case.read(**paths)
    assert len(result.rejects) == 0, result.rejects.to_frame()["reason"].to_list()
    assert result.items.filter(pl.col("item_id") == item_id)[column].to_list() == [LONG_TEXT]


# --- 7: a NUL byte in an id is a reject with a clear reason ----------------------------------------------------

NUL_IDS = [  # (case, role, text, the text with a NUL, rejected field)
    ("amazon2014", "reviews", b'"AUSER00003"', b'"AUSER\\u000000003"', "reviewerID"),
    ("amazon2014", "meta", b"'asin': 'TOY0000003'", b"'asin': 'TOY\\x000000003'", "asin"),
    ("amazon2018", "reviews", b'"AZZTEST00003"', b'"AZZTEST\\u000000003"', "reviewerID"),
    ("amazon2023", "reviews", b'"AZZ23USER0000000000000002"', b'"AZZ23USER\\u00000000000000000002"', "user_id"),
    ("p5", "datamaps", b'"UCCCC00003"', b'"UCCCC\\u000000003"', "id2user"),
    ("recbole", "inter", b"U0000003", b"U000\x000003", "user_id"),
    ("mind", "behaviors", b"U200", b"U2\x0000", "user_id"),
    ("mind", "behaviors", b"N1004-0", b"N10\x0004-0", "impressions"),
    ("mind", "news", b"N1002\t", b"N10\x0002\t", "news_id"),
    ("hm", "transactions", b"aa11bb22", b"aa11\x00bb22", "customer_id"),
    ("hm", "transactions", b",0900000002,", b",09000\x0000002,", "article_id"),
    ("lcrec", "inter_json", b'"1":', b'"1\\u0000":', "user_id"),
]


@pytest.mark.parametrize(
    "name, role, old, new, column", NUL_IDS, ids=[f"{name}-{role}-{column}" for name, role, _, _, column in NUL_IDS]
)
def test_nul_in_an_id_is_rejected_with_a_clear_reason(name, role, old, new, column, fixtures_dir, tmp_path):
    case = CASES[name]
    paths = copied(case, fixtures_dir, tmp_path)
    rewrite(paths[role], old, new)
    result = case.read(**paths)
    refused = result.rejects.to_frame().filter(pl.col("file") == str(paths[role]))
    assert refused["field"].to_list() and set(refused["field"]) == {column}
    assert refused["reason"].str.contains("control character").all(), refused["reason"].to_list()
    for frame in tables(result).values():
        if frame is not None:
            for id_column in ("user_id", "item_id", "impression_id"):
                if id_column in frame.columns:
                    assert not frame[id_column].str.contains("\x00", literal=True).any()


# --- 4: a repeated JSON key is a reject, its first entry kept --------------------------------------------------

DUPLICATE_KEYS = [  # (case, role, content, rejected field, reject line)
    ("lcrec", "inter_json", b'{"0": [0, 1, 2], "1": [1, 3], "0": [4]}', "user_id", 3),
    (
        "lcrec",
        "item_json",
        b'{"0": {"title": "Blocks."}, "1": {"title": "Kite."}, "1": {"title": "Ball."}}',
        "item_id",
        3,
    ),
    ("lcrec", "item_json", b'{"0": {"title": "Blocks."}, "1": {"title": "Kite.", "title": "Ball."}}', "title", 2),
    (
        "p5",
        "datamaps",
        (
            b'{"id2user": {"1": "U1", "2": "U2", "3": "U3", "1": "U4"}, "id2item": {"1": "TOY0000001", '
            b'"2": "TOY0000002", "3": "TOY0000003", "4": "TOY0000004", "5": "TOY0000005", "6": "TOY0000006", '
            b'"7": "TOY0000099"}}'
        ),
        "id2user",
        4,
    ),
]


@pytest.mark.parametrize(
    "name, role, content, column, line", DUPLICATE_KEYS, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in DUPLICATE_KEYS]
)
def test_repeated_json_key_is_rejected_and_the_first_entry_kept(
    name, role, content, column, line, fixtures_dir, tmp_path
):
    case = CASES[name]
    paths = copied(case, fixtures_dir, tmp_path)
    paths[role].write_bytes(content)
    result = case.read(**paths)
    refused = result.rejects.to_frame().filter(pl.col("file") == str(paths[role]))
    assert refused.select("line", "field").rows() == [(line, column)]
    assert refused["reason"].str.contains("repeated key").all()
    if role == "inter_json":
        assert result.interactions.filter(pl.col("user_id") == "0")["item_id"].to_list() == ["0", "1", "2"]
    if role == "item_json" and line == 3:
        assert result.items.filter(pl.col("item_id") == "1")["title"].to_list() == ["Kite."]
    if role == "datamaps":
        assert "U4" not in result.interactions["user_id"].to_list()
        assert result.interactions.filter(pl.col("user_id") == "U1")["item_id"].to_list()[:1] == ["TOY0000001"]


# --- 10: rejects keep the whole raw row; a required rating may not be empty -----------------------------------


def test_a_rejected_json_line_keeps_all_its_text(fixtures_dir, tmp_path):
    reviews = tmp_path / "reviews_Toys_5.json"
    line = (
        b'{"reviewerID": "AUSER00009", "asin": "TOY0000001", "reviewText": "' + LONG_TEXT[:10_000].encode() + b'", '
        b'"overall": "five stars", "unixReviewTime": 1262304000}'
    )
    reviews.write_bytes((fixtures_dir / "amazon2014/reviews_Toys_5.json").read_bytes() + line + b"\n")
    rejects = read_amazon2014(reviews).rejects.to_frame()
    assert rejects.select("line", "field").rows() == [(6, "overall")]
    assert rejects["raw"].to_list() == [line.decode()]


def test_a_rejected_tsv_row_keeps_all_its_text(fixtures_dir, tmp_path):
    behaviors = tmp_path / "behaviors.tsv"
    history = " ".join(f"N{n}" for n in range(2_000))  # ~11,000 characters
    row = f"99\tU300\t11/12/2019 2:14:46 PM\t{history}\tN1002-3"
    behaviors.write_text((fixtures_dir / "mind/behaviors.tsv").read_text() + row + "\n")
    rejects = read_mind(fixtures_dir / "mind/news.tsv", behaviors).rejects.to_frame()
    assert rejects.select("line", "field").rows() == [(4, "impressions")]
    assert rejects["raw"].to_list() == [row]


@pytest.mark.parametrize("blank_line", [False, True], ids=["polars", "csv"])
def test_a_rejected_recbole_row_keeps_its_raw_text(blank_line, fixtures_dir, tmp_path):
    """The raw text is the row as written (quotes, number spelling, columns the reader ignores), on both parsers."""
    items = tmp_path / "toys.item"
    content = (fixtures_dir / "recbole/toys.item").read_bytes()
    rewrite_from = b"45.5\t88.0"
    assert rewrite_from in content
    items.write_bytes(content.replace(rewrite_from, b"inf\t88.0"))
    if blank_line:
        header, rest = items.read_bytes().split(b"\n", 1)
        items.write_bytes(header + b"\n\n" + rest)
    result = read_recbole(fixtures_dir / "recbole/toys.inter", items)
    rejects = result.rejects.to_frame()
    line = 3 + blank_line
    assert rejects.select("line", "field").rows() == [(line, "price")]
    expected = items.read_bytes().split(b"\n")[line - 1].decode()
    assert rejects["raw"].to_list() == [expected]
    assert expected.startswith("TOY0000002\t\t\"'Toys & Games'")


@pytest.mark.parametrize("blank_line", [False, True], ids=["polars", "csv"])
@pytest.mark.parametrize("column", ["rating", "timestamp"])
def test_an_empty_recbole_rating_or_timestamp_is_a_reject(column, blank_line, fixtures_dir, tmp_path):
    inter = tmp_path / "toys.inter"
    content = (fixtures_dir / "recbole/toys.inter").read_bytes()
    old = b"1262390400\t4.0\t"
    inter.write_bytes(content.replace(old, b"\t4.0\t" if column == "timestamp" else b"1262390400\t\t"))
    if blank_line:
        header, rest = inter.read_bytes().split(b"\n", 1)
        inter.write_bytes(header + b"\n\n" + rest)
    result = read_recbole(inter, fixtures_dir / "recbole/toys.item")
    assert result.rejects.to_frame().select("line", "field").rows() == [(3 + blank_line, column)]
    assert result.interactions.height == 5
    assert result.interactions[column].null_count() == 0


def test_recbole_interactions_without_a_rating_column_stay_implicit(tmp_path, fixtures_dir):
    inter = tmp_path / "toys.inter"
    inter.write_text("user_id:token\titem_id:token\nU1\tTOY0000001\nU1\tTOY0000002\n")
    result = read_recbole(inter, fixtures_dir / "recbole/toys.item")
    assert len(result.rejects) == 0 and result.interactions["rating"].null_count() == 2

"""Delimited files: the fast pyarrow path and the careful csv-module path agree, and rejects find their lines."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ops.ingest.delimited import CSV, RECORD, TSV, read_table
from ops.ingest.errors import IngestError
from ops.ingest.rejects import RejectLog

CLEAN_CSV = b'id,text,n\n1,"two\nlines",3\n\n4,"a ""quoted"" word, and a comma",6\n7,,9\n'


def read(path: Path, content: bytes, dialect=CSV, columns=None):
    path.write_bytes(content)
    rejects = RejectLog()
    return read_table(path, rejects, dialect, columns), rejects


def test_fast_path_reads_quotes_newlines_and_empty_fields(tmp_path):
    table, rejects = read(tmp_path / "t.csv", CLEAN_CSV)
    assert table.frame.drop(RECORD).rows() == [
        ("1", "two\nlines", "3"),
        ("4", 'a "quoted" word, and a comma', "6"),
        ("7", "", "9"),
    ]
    assert len(rejects) == 0 and rejects.rows_read[str(tmp_path / "t.csv")] == 3


def test_careful_path_keeps_the_same_good_rows(tmp_path):
    fast, _ = read(tmp_path / "clean.csv", CLEAN_CSV)
    careful, rejects = read(tmp_path / "damaged.csv", CLEAN_CSV + b"10,11\n")  # a short row forces the csv module
    assert careful.frame.drop(RECORD).equals(fast.frame.drop(RECORD))
    assert rejects.to_frame().select("line", "field", "raw").rows() == [(7, "<columns>", "10,11")]


@pytest.mark.parametrize("damage", [b"", b"10,11\n"])
def test_vectorized_rejects_find_physical_lines(tmp_path, damage):
    """Lines are right after a record that spans two lines, whichever path read the file."""
    table, rejects = read(tmp_path / "t.csv", CLEAN_CSV + damage)
    table.reject(pl.col("id") == "4", "id", "four is not allowed")
    assert table.frame["id"].to_list() == ["1", "7"]
    assert (5, "id", '4,"a ""quoted"" word, and a comma",6') in rejects.to_frame().select("line", "field", "raw").rows()


def test_null_checks_count_as_failures(tmp_path):
    table, rejects = read(tmp_path / "t.csv", CLEAN_CSV)
    table.reject(pl.when(pl.col("id") != "1").then(False), "id", "unverifiable")
    assert table.frame["id"].to_list() == ["4", "7"]
    assert rejects.to_frame()["line"].to_list() == [2]


def test_tsv_without_quoting_and_with_named_columns(tmp_path):
    table, rejects = read(tmp_path / "t.tsv", b'a\t"b\tc\n\xffx\ty\tz\n', TSV, ["x", "y", "z"])
    assert table.frame.drop(RECORD).rows() == [("a", '"b', "c")]
    assert rejects.to_frame().select("line", "field").rows() == [(2, "<encoding>")]


def test_blank_header_line_raises(tmp_path):
    with pytest.raises(IngestError, match="first line should name the columns"):
        read(tmp_path / "t.csv", b"\nid,text\n1,2\n")

"""Scraped-text cleaning: tags (whole or cut in half), entities, whitespace, and junk that must become null."""

from __future__ import annotations

import polars as pl
import pytest

from ops.ingest.text import nonblank_text, strip_html


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('<span class="a-size-medium a-color-secondary"', None),  # a tag cut off at the end
        (' Magazines" />', None),  # the tail of a tag cut off at the start
        ("Disney &amp; Me", "Disney & Me"),
        ("<i>Maximum PC</i> brings  tons\n of <br/>news", "Maximum PC brings tons of news"),
        ("&lt;br&gt;Escaped twice", "Escaped twice"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),  # comparisons are not tags
        ("&nbsp; --- ", None),
        ("Caf&eacute; &ndash; ok", "Café – ok"),
        (None, None),
    ],
)
def test_strip_html_values(raw, clean):
    frame = pl.DataFrame({"text": [raw]}, schema={"text": pl.String})
    assert strip_html(frame, ["text"])["text"].to_list() == [clean]


def test_strip_html_lists_drop_junk_elements_and_keep_nulls():
    frame = pl.DataFrame(
        {"tags": [["Arts &amp; Music", "<b></b>", "Photo"], [], None]}, schema={"tags": pl.List(pl.String)}
    )
    assert strip_html(frame, ["tags"])["tags"].to_list() == [["Arts & Music", "Photo"], [], None]


def test_nonblank_text_collapses_whitespace_and_nulls_empty_fields():
    frame = pl.DataFrame({"t": ["  two\t words ", "", "   ", None]})
    assert frame.select(nonblank_text("t"))["t"].to_list() == ["two words", None, None, None]

"""MIND (Microsoft News Dataset): ``news.tsv`` (the catalogue) and ``behaviors.tsv`` (impression logs).

news.tsv -> items: title, description = abstract, categories = [category, subcategory], attributes = url and the
title/abstract entity lists (decoded, re-encoded canonically). Whitespace in titles and abstracts is collapsed.

behaviors.tsv -> interactions and impressions. Each row is one impression: (impression_id, user_id, time,
history, impressions). Interactions are, per user,
1. the click history, without timestamps (MIND does not date it), deduplicated and in history order: a user's
   history is repeated on each of their impressions, and occasionally lists a news twice;
2. then every clicked item of every impression, at the impression's time.
`normalize.with_positions` sorts null timestamps first, so the history stays before the dated clicks.
The ``impressions`` table keeps every shown item (slot, clicked) for CTR training. ``time`` ("11/12/2019 2:14:46
PM", no zero padding) is read as UTC: MIND publishes no time zone, and UTC keeps it reproducible.

Most news ids in a MIND subset are absent from its news.tsv (here 838 of 22,592): their interactions and
impressions are kept, and every referenced id without a news row becomes a text-less placeholder item (counter
``textless_items``), so impressions join to items like interactions do.

Both files are read vectorized (`delimited.read_table` + polars); rows that fail a check are rejected by line.
A behaviors row equal in every field to an earlier one (a file appended to itself) is dropped and counted
(``duplicate_impressions_dropped``); an id (news, impression, user, or one in a history or impression list)
holding a control character such as NUL is rejected.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ops.ingest.delimited import TSV, Table, read_table
from ops.ingest.frames import attributes_expr, first_of_each, has_text_expr, with_missing_items
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult
from ops.ingest.schema import IMPRESSIONS, ITEMS, RAW_INTERACTIONS, conform
from ops.ingest.text import nonblank_text

SOURCE = "mind"

NEWS_COLUMNS = ["news_id", "category", "subcategory", "title", "abstract", "url", "title_entities", "abstract_entities"]
BEHAVIORS_COLUMNS = ["impression_id", "user_id", "time", "history", "impressions"]

_ENTITY = pl.Struct(  # fields in sorted order, so the re-encoded JSON has sorted keys like `attributes_json`
    {
        "Confidence": pl.Float64,
        "Label": pl.String,
        "OccurrenceOffsets": pl.List(pl.Int64),
        "SurfaceForms": pl.List(pl.String),
        "Type": pl.String,
        "WikidataId": pl.String,
    }
)
_ENTITIES = pl.List(_ENTITY)
_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
_IMPRESSION_LIST = r"^\S+-[01]( \S+-[01])*$"  # "N55689-1 N35729-0"


def read_mind(news: Path, behaviors: Path) -> ReaderResult:
    """Items from news.tsv; interactions and the impressions table from behaviors.tsv."""
    rejects = RejectLog()
    items, duplicate_news = _read_news(read_table(Path(news), rejects, TSV, NEWS_COLUMNS))
    behavior_rows = read_table(Path(behaviors), rejects, TSV, BEHAVIORS_COLUMNS)
    duplicate_impressions = behavior_rows.drop_duplicates()
    shown = _read_behaviors(behavior_rows)
    impressions = _impressions(shown)
    interactions, duplicate_history = _interactions(shown, impressions)
    referenced = pl.concat([interactions.select("item_id"), impressions.select("item_id")])
    items, textless = with_missing_items(items, referenced, SOURCE)
    return ReaderResult(
        items=items,
        interactions=interactions,
        rejects=rejects,
        impressions=impressions,
        counters={
            "duplicate_items_dropped": duplicate_news,
            "duplicate_impressions_dropped": duplicate_impressions,
            "duplicate_history_dropped": duplicate_history,
            "textless_items": textless,
        },
    )


def _read_news(table: Table) -> tuple[pl.DataFrame, int]:
    table.require_ids(["news_id"])
    for column in ("title_entities", "abstract_entities"):
        _decode_entities(table, column)
    news = table.frame.with_columns(title=nonblank_text("title"), description=nonblank_text("abstract"))
    unique, duplicates = first_of_each(news, ["news_id"])
    attributes = {"url": pl.String, "title_entities": _ENTITIES, "abstract_entities": _ENTITIES}
    items = unique.with_columns(
        item_id=pl.col("news_id"),
        brand=pl.lit(None, pl.String),
        categories=pl.concat_list("category", "subcategory").list.filter(pl.element() != ""),
        price=pl.lit(None, pl.Float64),
        attributes=attributes_expr(pl.Schema(attributes)),
        source=pl.lit(SOURCE),
    ).with_columns(has_text=has_text_expr())
    return conform(items, ITEMS, "items"), duplicates


def _decode_entities(table: Table, column: str) -> None:
    """Parse an entity-list column in place; rows whose JSON does not parse as entities are rejected.

    polars decodes the whole column at once and fails as a whole, so only then is each row tried alone.
    """
    decode = pl.col(column).str.json_decode(_ENTITIES)
    try:
        table.frame = table.frame.with_columns(decode)
        return
    except pl.exceptions.PolarsError:
        pass
    bad = [not _decodes(value) for value in table.frame[column]]
    table.reject(pl.Series(bad), column, "expected a JSON list of entity objects")
    table.frame = table.frame.with_columns(decode)


def _decodes(value: str) -> bool:
    try:
        pl.Series([value]).str.json_decode(_ENTITIES)
    except pl.exceptions.PolarsError:
        return False
    return True


def _read_behaviors(table: Table) -> pl.DataFrame:
    """One row per impression, validated, with ``timestamp`` (unix seconds) and the split ``history``/``shown``."""
    table.require_ids(["impression_id", "user_id"])
    for column in ("history", "impressions"):
        table.reject_control_characters(column)
    time = pl.col("time").str.strptime(pl.Datetime("us", "UTC"), _TIME_FORMAT, strict=False)
    table.frame = table.frame.with_columns(timestamp=time.dt.epoch("s"))
    table.reject(pl.col("timestamp").is_null(), "time", "expected a time like 11/12/2019 2:14:46 PM")
    table.reject(~pl.col("impressions").str.contains(_IMPRESSION_LIST), "impressions", "expected news-0/1 items")
    return table.frame.select(
        "impression_id",
        "user_id",
        "timestamp",
        history=pl.col("history").str.split(" ").list.filter(pl.element() != ""),
        shown=pl.col("impressions").str.split(" "),
    )


def _interactions(behaviors: pl.DataFrame, impressions: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Each user's deduplicated history (undated), then every click at its impression's time."""
    history = behaviors.group_by("user_id", maintain_order=True).agg(
        pl.col("history").list.explode(keep_nulls=False, empty_as_null=False)
    )
    n_history = history["history"].list.len().sum()
    history = (
        history.select("user_id", item_id=pl.col("history").list.unique(maintain_order=True))
        .explode("item_id", keep_nulls=False)
        .with_columns(timestamp=pl.lit(None, pl.Int64))
    )
    clicks = impressions.filter("clicked").select("user_id", "item_id", "timestamp")
    interactions = pl.concat([history, clicks]).with_columns(rating=pl.lit(None, pl.Float32))
    return conform(interactions, RAW_INTERACTIONS, "interactions"), n_history - history.height


def _impressions(behaviors: pl.DataFrame) -> pl.DataFrame:
    shown = behaviors.select(
        "impression_id",
        "user_id",
        "timestamp",
        "shown",
        slot=pl.int_ranges(pl.col("shown").list.len(), dtype=pl.Int32),
    ).explode("shown", "slot")
    token = pl.col("shown")
    return conform(
        shown.with_columns(item_id=token.str.head(-2), clicked=token.str.ends_with("-1")),
        IMPRESSIONS,
        "impressions",
    )

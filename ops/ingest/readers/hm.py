"""H&M Personalized Fashion Recommendations (Kaggle 2022): ``articles.csv`` and ``transactions_train.csv``.

Two layouts are read the same way: the Kaggle originals, and pandas re-exports such as the shared sample, which
add an unnamed leading index column (dropped here) and lost the leading zeros of ``article_id`` and
``product_code``. Ids are normalized to the Kaggle form: 10-digit zero-padded article ids (7 digits for product
codes), so both layouts give identical tables and join with anything keyed by the official ids.

articles -> items: title = prod_name, description = detail_desc (null when empty), categories = the breadcrumb
index_group_name > section_name > product_group_name > product_type_name (e.g. Ladieswear > Womens Everyday
Basics > Garment Upper body > Vest top: shop, then shelf, then what the garment is). Every other ``*_name``
column (colour, appearance, department, garment group, ...) and product_code go to attributes; the numeric
``*_no``/``*_code``/``*_id`` columns only encode those names and are dropped.

transactions -> interactions: customer_id, article_id, t_dat (a day; unix seconds of its UTC midnight), no
rating. ``price`` and ``sales_channel_id`` are dropped: the interactions table has no place for them.
Articles bought but absent from articles.csv become text-less placeholder items (``textless_items``).

A transaction row equal in every field (after the re-export's index column is dropped) to an earlier one is dropped
and counted (``duplicate_transactions_dropped``): a file appended to itself adds nothing. The Kaggle files list a
multi-unit purchase as such repeated rows, so it becomes one interaction (~9% of the rows of the shared sample).
An id holding a control character such as NUL is rejected with that reason.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ops.ingest.delimited import CSV, Table, read_table
from ops.ingest.frames import attributes_expr, first_of_each, has_text_expr, with_missing_items
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult
from ops.ingest.schema import ITEMS, RAW_INTERACTIONS, conform
from ops.ingest.text import collapse_spaces, nonblank_text

SOURCE = "hm"

BREADCRUMB = ["index_group_name", "section_name", "product_group_name", "product_type_name"]
ARTICLE_COLUMNS = ["article_id", "product_code", "prod_name", "detail_desc", *BREADCRUMB]
TRANSACTION_COLUMNS = ["t_dat", "customer_id", "article_id"]

_DIGITS = r"^\d+$"


def read_hm(articles: Path, transactions: Path) -> ReaderResult:
    """Items from articles.csv, interactions from transactions_train.csv, in either layout."""
    rejects = RejectLog()
    items, duplicates = _read_articles(_table(Path(articles), rejects, ARTICLE_COLUMNS))
    purchases = _table(Path(transactions), rejects, TRANSACTION_COLUMNS)
    duplicate_transactions = purchases.drop_duplicates()
    interactions = _read_transactions(purchases)
    items, textless = with_missing_items(items, interactions, SOURCE)
    counters = {
        "duplicate_items_dropped": duplicates,
        "duplicate_transactions_dropped": duplicate_transactions,
        "textless_items": textless,
    }
    return ReaderResult(items=items, interactions=interactions, rejects=rejects, counters=counters)


def _table(path: Path, rejects: RejectLog, required: list[str]) -> Table:
    """The CSV with its header; a pandas re-export's unnamed index column is dropped."""
    table = read_table(path, rejects, CSV)
    if "" in table.frame.columns:
        table.frame = table.frame.drop("")
    table.require_columns(required)
    return table


def _padded_id(column: str, width: int) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.zfill(width)


def _reject_non_digits(table: Table, column: str, width: int) -> None:
    table.reject_control_characters(column)
    text = pl.col(column).str.strip_chars()
    bad = ~text.str.contains(_DIGITS) | (text.str.len_bytes() > width)
    table.reject(bad, column, f"expected an id of at most {width} digits")


def _read_articles(table: Table) -> tuple[pl.DataFrame, int]:
    _reject_non_digits(table, "article_id", 10)
    _reject_non_digits(table, "product_code", 7)
    articles = table.frame.with_columns(
        item_id=_padded_id("article_id", 10), product_code=_padded_id("product_code", 7)
    )
    unique, duplicates = first_of_each(articles, ["item_id"])
    extra = ["product_code", *(name for name in articles.columns if name.endswith("_name") and name not in BREADCRUMB)]
    extra.remove("prod_name")
    items = unique.with_columns(
        title=nonblank_text("prod_name"),
        description=nonblank_text("detail_desc"),
        brand=pl.lit(None, pl.String),
        categories=pl.concat_list(collapse_spaces(pl.col(BREADCRUMB))).list.filter(pl.element() != ""),
        price=pl.lit(None, pl.Float64),
        attributes=attributes_expr(pl.Schema(dict.fromkeys(extra, pl.String))),
        source=pl.lit(SOURCE),
    ).with_columns(has_text=has_text_expr())
    return conform(items, ITEMS, "items"), duplicates


def _read_transactions(table: Table) -> pl.DataFrame:
    table.require_ids(["customer_id"])
    _reject_non_digits(table, "article_id", 10)
    day = pl.col("t_dat").str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    table.reject(day.is_null(), "t_dat", "expected a date YYYY-MM-DD")
    interactions = table.frame.select(
        user_id=pl.col("customer_id").str.strip_chars(),
        item_id=_padded_id("article_id", 10),
        timestamp=day.dt.epoch("s"),
        rating=pl.lit(None, pl.Float32),
    )
    return conform(interactions, RAW_INTERACTIONS, "interactions")

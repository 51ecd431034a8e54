"""S3-Rec / P5 sequence files of an Amazon 2014 5-core (``Beauty.txt`` and friends), with RecBole item text.

- ``Beauty.txt``: ``user item item ...`` per line, integer ids, each user's items in time order.
- ``datamaps.json``: P5's ``id2user`` / ``id2item`` from those integers to the raw reviewerID / ASIN. Output ids
  are the raw strings, so the tables join with every other Amazon 2014 derivative (and with the RecBole files).
- RecBole ``.item``: title, categories, brand, price and sales rank per ASIN (`recbole.read_item_table`).
- S3-Rec ``item2attributes.json`` (optional): attribute ids per integer item id, kept as ``s3rec_attribute_ids``.
These derivatives carry order only: timestamps and ratings are null.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa

from ops.ingest.errors import IngestError, RowError
from ops.ingest.fields import get_id, get_int_list
from ops.ingest.frames import first_of_each, interactions_frame, with_missing_items
from ops.ingest.lines import decode_utf8, iter_object_rows, iter_parsed_lines, load_json_object, read_bytes
from ops.ingest.readers.recbole import finish_items, read_item_table
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult
from ops.ingest.schema import ITEMS, empty

SOURCE = "p5"
_SEQUENCES = pl.Schema({"user_id": pl.String, "item_id": pl.List(pl.String)})
_CLEAN_ID = re.compile(r"[^\x00-\x1f\x7f]+")  # no control character (with `isspace`: what `get_id` accepts)


def read_p5_sequences(
    sequences: Path, datamaps: Path, items: Path | None = None, item2attributes: Path | None = None
) -> ReaderResult:
    """Interactions in sequence order (one line = one user and all of its items), items from the RecBole file.

    A line naming an id that ``datamaps`` lacks is rejected whole: dropping one item would silently change the
    order-based splits. A line repeating an earlier one exactly (a file appended to itself) is dropped and
    counted (``duplicate_sequences_dropped``). Items the sequences use but ``items`` lacks get text-less
    placeholders (counter ``textless_items``); attribute ids of such items are not kept. Without ``items`` (the
    P5/S3-Rec files alone carry no text) every item is such a placeholder.
    """
    rejects = RejectLog()
    id2user, id2item = _datamaps(Path(datamaps), rejects)
    interactions, duplicates = _sequences(Path(sequences), id2user, id2item, rejects)
    table, duplicate_items = read_item_table(items, rejects) if items is not None else (empty(ITEMS), 0)
    if item2attributes is not None:
        attribute_ids = _attribute_ids(Path(item2attributes), id2item, rejects)
        table = table.join(attribute_ids, on="item_id", how="left", maintain_order="left")
    catalogue, textless = with_missing_items(finish_items(table, SOURCE), interactions, SOURCE)
    counters = {
        "duplicate_sequences_dropped": duplicates,
        "duplicate_items_dropped": duplicate_items,
        "textless_items": textless,
    }
    return ReaderResult(catalogue, interactions, rejects, counters=counters)


def _datamaps(path: Path, rejects: RejectLog) -> tuple[dict[str, str], dict[str, str]]:
    """``id2user`` and ``id2item``; an entry whose value is not a raw id is rejected (reject line = its position)."""
    document, clean = load_json_object(path, rejects)
    maps = []
    for name in ("id2user", "id2item"):
        records = document.get(name)
        if not isinstance(records, dict):
            raise IngestError(path, f"no {name} object")
        if not records:
            raise IngestError(path, f"empty {name} object: it holds no entries")
        if clean and all(
            type(value) is str and _CLEAN_ID.fullmatch(value) and not value.isspace() for value in records.values()
        ):
            rejects.count_read(path, len(records))  # every entry would pass `_raw_id`: skip 34k calls
        else:
            records = dict(iter_object_rows(path, records, clean, rejects, name, partial(_raw_id, name)))
        maps.append(records)
    return maps[0], maps[1]


def _raw_id(name: str, key: str, value: object) -> tuple[str, str]:
    return key, get_id({name: value}, name)


def _sequences(
    path: Path, id2user: dict[str, str], id2item: dict[str, str], rejects: RejectLog
) -> tuple[pl.DataFrame, int]:
    """Interactions of every valid line, in file order, without repeated lines; and how many repeats were dropped.

    The whole file is mapped vectorized when every line is clean (valid UTF-8, single spaces, known ids).
    Otherwise each line goes through `_sequence`, and each bad line is rejected with its line number.
    """
    content = read_bytes(path, rejects)
    mapped = _mapped_sequences(content, id2user, id2item)
    if mapped is not None:
        rejects.count_read(path, mapped.height)
    else:
        parsed = list(iter_parsed_lines(path, rejects, partial(_sequence, id2user=id2user, id2item=id2item), content))
        users, items = zip(*parsed, strict=True) if parsed else ([], [])
        mapped = pl.DataFrame({"user_id": users, "item_id": items}, schema=_SEQUENCES)
    unique, dropped = first_of_each(mapped, ["user_id", "item_id"])
    interactions = unique.explode("item_id")
    return interactions_frame(interactions["user_id"], interactions["item_id"]), dropped


def _mapped_sequences(content: bytes, id2user: dict[str, str], id2item: dict[str, str]) -> pl.DataFrame | None:
    """One row per sequence line (user, items) as raw ids, or None if any non-blank line is not clean."""
    try:
        lines = pl.Series(decode_utf8(content).split("\n"), dtype=pl.String)
    except UnicodeDecodeError:
        return None
    tokens = lines.filter(lines != "").str.split(" ")
    sequences = pl.DataFrame(
        {
            "user_id": tokens.list.first().replace_strict(*_lookup(id2user), default=None),
            "item_id": tokens.list.slice(1).list.eval(pl.element().replace_strict(*_lookup(id2item), default=None)),
        }
    )
    items = sequences["item_id"]
    if sequences["user_id"].null_count() or (items.list.len() == 0).any() or items.list.explode().null_count():
        return None
    return sequences.cast(_SEQUENCES)


def _lookup(mapping: dict[str, str]) -> tuple[pl.Series, pl.Series]:
    """A dict as the (old, new) Series pair of `replace_strict`; a dict argument would be converted row by row."""
    return pl.Series(list(mapping.keys()), dtype=pl.String), pl.Series(list(mapping.values()), dtype=pl.String)


def _sequence(line: bytes, id2user: dict[str, str], id2item: dict[str, str]) -> tuple[str, list[str]]:
    """One ``user item item ...`` line as the raw reviewerID and ASINs."""
    try:
        user, *items = decode_utf8(line).split()
    except UnicodeDecodeError as error:
        raise RowError("<encoding>", f"invalid UTF-8 ({error.reason})") from None
    if not items:
        raise RowError("item_id", "the sequence has no items")
    if user not in id2user:
        raise RowError("user_id", f"user id {user!r:.40} is not in datamaps id2user")
    try:
        return id2user[user], [id2item[item] for item in items]
    except KeyError as error:
        raise RowError("item_id", f"item id {error.args[0]!r:.40} is not in datamaps id2item") from None


def _attribute_ids(path: Path, id2item: dict[str, str], rejects: RejectLog) -> pl.DataFrame:
    """``item_id`` (ASIN) -> ``s3rec_attribute_ids`` from S3-Rec's ``{"<item id>": [attribute id, ...]}``."""
    document, clean = load_json_object(path, rejects)
    if clean and all(
        key in id2item and type(ids) is list and all(type(i) is int for i in ids) for key, ids in document.items()
    ):
        rejects.count_read(path, len(document))  # every entry would pass `_item_attributes`
        rows = [(id2item[key], ids) for key, ids in document.items()]
    else:
        parse = partial(_item_attributes, id2item=id2item)
        rows = list(iter_object_rows(path, document, clean, rejects, "item_id", parse))
    item_ids = [item_id for item_id, _ in rows]
    attribute_ids = pa.array([ids for _, ids in rows], type=pa.list_(pa.int64()))  # 30x faster than pl.Series
    return pl.DataFrame({"item_id": pl.Series(item_ids, dtype=pl.String), "s3rec_attribute_ids": attribute_ids})


def _item_attributes(key: str, value: object, id2item: dict[str, str]) -> tuple[str, list[int]]:
    if key not in id2item:
        raise RowError("item_id", f"item id {key!r:.40} is not in datamaps id2item")
    return id2item[key], get_int_list({"s3rec_attribute_ids": value}, "s3rec_attribute_ids")

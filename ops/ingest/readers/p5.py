"""S3-Rec / P5 sequence files of an Amazon 2014 5-core (``Beauty.txt`` and friends), with RecBole item text.

- ``Beauty.txt``: ``user item item ...`` per line, integer ids, each user's items in time order.
- ``datamaps.json``: P5's ``id2user`` / ``id2item`` from those integers to the raw reviewerID / ASIN. Output ids
  are the raw strings, so the tables join with every other Amazon 2014 derivative (and with the RecBole files).
- RecBole ``.item``: title, categories, brand, price and sales rank per ASIN (`recbole.read_item_table`).
- S3-Rec ``item2attributes.json`` (optional): attribute ids per integer item id, kept as ``s3rec_attribute_ids``.
These derivatives carry order only: timestamps and ratings are null.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa

from ops.ingest.errors import IngestError, RowError
from ops.ingest.fields import get_int_list, get_str
from ops.ingest.frames import interactions_frame, with_missing_items
from ops.ingest.lines import decode_utf8, iter_object_rows, iter_parsed_lines, load_json_object, read_bytes
from ops.ingest.readers.recbole import finish_items, read_item_table
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult

SOURCE = "p5"


def read_p5_sequences(
    sequences: Path, datamaps: Path, items: Path, item2attributes: Path | None = None
) -> ReaderResult:
    """Interactions in sequence order (one line = one user and all of its items), items from the RecBole file.

    A line naming an id that ``datamaps`` lacks is rejected whole: dropping one item would silently change the
    order-based splits. Items the sequences use but ``items`` lacks get text-less placeholders
    (counter ``textless_items``); attribute ids of such items are not kept.
    """
    rejects = RejectLog()
    id2user, id2item = _datamaps(Path(datamaps), rejects)
    interactions = _sequences(Path(sequences), id2user, id2item, rejects)
    table = read_item_table(items, rejects)
    if item2attributes is not None:
        attribute_ids = _attribute_ids(Path(item2attributes), id2item, rejects)
        table = table.join(attribute_ids, on="item_id", how="left", maintain_order="left")
    catalogue, textless = with_missing_items(finish_items(table, SOURCE), interactions, SOURCE)
    return ReaderResult(catalogue, interactions, rejects, counters={"textless_items": textless})


def _datamaps(path: Path, rejects: RejectLog) -> tuple[dict[str, str], dict[str, str]]:
    """``id2user`` and ``id2item``; an entry whose value is not a raw id is rejected (reject line = its position)."""
    document, decodable = load_json_object(path)
    maps = []
    for name in ("id2user", "id2item"):
        records = document.get(name)
        if not isinstance(records, dict):
            raise IngestError(path, f"no {name} object")
        if decodable and all(type(value) is str and value and not value.isspace() for value in records.values()):
            rejects.count_read(path, len(records))  # every entry would pass `_raw_id`: skip 34k calls
        else:
            records = dict(iter_object_rows(path, records, decodable, rejects, partial(_raw_id, name)))
        maps.append(records)
    return maps[0], maps[1]


def _raw_id(name: str, key: str, value: object) -> tuple[str, str]:
    return key, get_str({name: value}, name, required=True)


def _sequences(path: Path, id2user: dict[str, str], id2item: dict[str, str], rejects: RejectLog) -> pl.DataFrame:
    """Interactions of every valid line, in file order.

    The whole file is mapped vectorized when every line is clean (valid UTF-8, single spaces, known ids).
    Otherwise each line goes through `_sequence`, and each bad line is rejected with its line number.
    """
    mapped = _mapped_sequences(read_bytes(path), id2user, id2item)
    if mapped is not None:
        interactions, n_lines = mapped
        rejects.count_read(path, n_lines)
        return interactions
    user_ids: list[str] = []
    item_ids: list[str] = []
    for user, items in iter_parsed_lines(path, rejects, partial(_sequence, id2user=id2user, id2item=id2item)):
        user_ids.extend([user] * len(items))
        item_ids.extend(items)
    return interactions_frame(user_ids, item_ids)


def _mapped_sequences(
    content: bytes, id2user: dict[str, str], id2item: dict[str, str]
) -> tuple[pl.DataFrame, int] | None:
    """The interactions and the number of sequence lines, or None if any non-blank line is not clean."""
    try:
        lines = pl.Series(decode_utf8(content).split("\n"), dtype=pl.String)
    except UnicodeDecodeError:
        return None
    tokens = lines.filter(lines != "").str.split(" ")
    pairs = pl.DataFrame(
        {
            "user_id": tokens.list.first().replace_strict(*_lookup(id2user), default=None),
            "item_id": tokens.list.slice(1),
        }
    ).explode("item_id", empty_as_null=True)
    pairs = pairs.with_columns(pl.col("item_id").replace_strict(*_lookup(id2item), default=None))
    if pairs["user_id"].null_count() or pairs["item_id"].null_count():
        return None
    return interactions_frame(pairs["user_id"], pairs["item_id"]), tokens.len()


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
    document, decodable = load_json_object(path)
    if decodable and all(
        key in id2item and type(ids) is list and all(type(i) is int for i in ids) for key, ids in document.items()
    ):
        rejects.count_read(path, len(document))  # every entry would pass `_item_attributes`
        rows = [(id2item[key], ids) for key, ids in document.items()]
    else:
        rows = list(iter_object_rows(path, document, decodable, rejects, partial(_item_attributes, id2item=id2item)))
    item_ids = [item_id for item_id, _ in rows]
    attribute_ids = pa.array([ids for _, ids in rows], type=pa.list_(pa.int64()))  # 30x faster than pl.Series
    return pl.DataFrame({"item_id": pl.Series(item_ids, dtype=pl.String), "s3rec_attribute_ids": attribute_ids})


def _item_attributes(key: str, value: object, id2item: dict[str, str]) -> tuple[str, list[int]]:
    if key not in id2item:
        raise RowError("item_id", f"item id {key!r:.40} is not in datamaps id2item")
    return id2item[key], get_int_list({"s3rec_attribute_ids": value}, "s3rec_attribute_ids")

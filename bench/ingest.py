"""Readers' rows/s against plain pandas readers of the same files, in the same run.

    python bench/ingest.py            (or: make bench-ingest)

The pandas baseline only parses (no validation, no rejects, no normalization); semid's readers also validate
every field and keep rejects, so a ratio >= 1.0 means that safety costs nothing against the usual one-liner.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import best_time, print_table, write_result  # noqa: E402
from ops.ingest.datasets import DATASETS  # noqa: E402
from resources.storage import default_data_root  # noqa: E402


def pandas_json_lines(path: Path) -> int:
    return len(pd.read_json(path, lines=True, compression="infer"))


def pandas_tsv(path: Path) -> int:
    return len(pd.read_csv(path, sep="\t"))


def pandas_tsv_unquoted(path: Path) -> int:
    return len(pd.read_csv(path, sep="\t", header=None, quoting=csv.QUOTE_NONE))


def pandas_csv(path: Path) -> int:
    return len(pd.read_csv(path))


def pandas_json_object(path: Path) -> int:
    return len(pd.read_json(path, typ="series"))


def pandas_sequences(path: Path) -> int:
    """`user item item ...` lines -> one row per (user, item), the way pandas users usually do it."""
    lines = pd.read_csv(path, header=None, names=["line"], sep="\x01")["line"].str.split(" ")
    return len(lines.explode()) - len(lines)


# file name -> the plain pandas call a user would write for it
BASELINES = {
    "Beauty.txt": pandas_sequences,
    "datamaps.json": pandas_json_object,
    "Amazon_Beauty.item": pandas_tsv,
    "Beauty_item2attributes.json": pandas_json_object,
    "amazon-beauty.inter.filtered": pandas_tsv,
    "news.tsv": pandas_tsv_unquoted,
    "behaviors.tsv": pandas_tsv_unquoted,
    "articles.csv": pandas_csv,
    "transactions_train.csv": pandas_csv,
}


def baseline_for(path: Path):
    return BASELINES.get(path.name, pandas_json_lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path(default_data_root()), help="raw data sets folder")
    data_root = parser.parse_args().data_root
    rows = []
    for spec in DATASETS.values():
        paths = spec.paths(data_root)
        if not all(path.is_file() for path in paths.values()):
            print(f"skip {spec.name}: files absent under {data_root}")
            continue
        ours_seconds, result = best_time(lambda: spec.read(data_root))
        rows_read = sum(result.rejects.rows_read.values())
        pandas_seconds = 0.0
        for path in paths.values():
            seconds, _ = best_time(lambda: baseline_for(path)(path))
            pandas_seconds += seconds
        rows.append(
            {
                "dataset": spec.name,
                "files": len(paths),
                "rows": rows_read,
                "semid_s": round(ours_seconds, 4),
                "pandas_s": round(pandas_seconds, 4),
                "semid_rows_per_s": round(rows_read / ours_seconds),
                "pandas_rows_per_s": round(rows_read / pandas_seconds),
                "ratio": round(pandas_seconds / ours_seconds, 3),
            }
        )
    print_table(rows)
    write_result(
        "ingest",
        rows,
        notes="ratio = pandas seconds / semid seconds over the same files (>= 1.0: semid at least as fast); "
        "best of 3 runs each; rows = raw rows/records read by the semid reader.",
    )


if __name__ == "__main__":
    main()

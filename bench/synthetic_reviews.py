"""Seeded Amazon Reviews 2023 review files of any size, in the released JSON-lines format, for memory and speed tests.

Each line has the release's fields (rating, title, text, images, asin, parent_asin, user_id, timestamp in
milliseconds, helpful_vote, verified_purchase). Every ``repeat_every``-th review is written again onto another
variant (asin) of the same product, as the release does, so a reader's duplicate handling has work to do.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import time
from pathlib import Path

import orjson

from ops.ingest.readers.amazon2023 import read_amazon2023

_WORDS = [
    "gentle",
    "lotion",
    "spray",
    "works",
    "fast",
    "smells",
    "odd",
    "skin",
    "dry",
    "daily",
    "price",
    "bottle",
    "small",
    "large",
    "value",
    "brand",
    "great",
    "poor",
    "fine",
    "returned",
    "again",
    "would",
    "buy",
    "recommend",
    "scent",
    "sticky",
    "light",
    "heavy",
    "travel",
    "size",
    "family",
    "doctor",
]
_POOL = 4096  # distinct texts and titles: drawing words per review would make generation slower than reading


def write_reviews_2023(path: Path, n_reviews: int, seed: int = 0, repeat_every: int = 50) -> int:
    """Write ``n_reviews`` distinct reviews (plus repeats) to ``path`` (gzip when it ends in .gz); returns lines.

    Users and items are drawn so that ids repeat as in a real category (~n/8 users, ~n/20 items); texts are
    10-60 words drawn from a seeded pool of 4,096, so a review line is ~250-500 bytes like the real files.
    """
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(_WORDS, k=rng.randint(10, 60))) for _ in range(_POOL)]
    titles = [" ".join(rng.choices(_WORDS, k=3)) for _ in range(_POOL)]
    n_users, n_items = max(1, n_reviews // 8), max(1, n_reviews // 20)
    opener = gzip.open if path.suffix == ".gz" else open
    lines = 0
    with opener(path, "wb") as out:
        batch: list[bytes] = []
        for index in range(n_reviews):
            item = rng.randrange(n_items)
            record = {
                "rating": float(rng.randint(1, 5)),
                "title": titles[rng.randrange(_POOL)],
                "text": texts[rng.randrange(_POOL)],
                "images": [],
                "asin": f"B0V{item:07d}A",
                "parent_asin": f"B0P{item:07d}",
                "user_id": f"AG{rng.randrange(n_users):026d}",
                "timestamp": 1_500_000_000_000 + index * 1000 + rng.randrange(1000),
                "helpful_vote": rng.randrange(10),
                "verified_purchase": rng.random() < 0.9,
            }
            batch.append(orjson.dumps(record))
            if index % repeat_every == 0:  # the same review copied onto another variant of the product
                batch.append(orjson.dumps(record | {"asin": f"B0V{item:07d}B"}))
            if len(batch) >= 10_000:
                lines += len(batch)
                out.write(b"\n".join(batch) + b"\n")
                batch = []
        lines += len(batch)
        out.write(b"\n".join(batch) + (b"\n" if batch else b""))
    return lines


def ingest_figures(path: Path) -> dict[str, float]:
    """Read ``path`` with the 2023 reader in this process: counts, seconds and this process's peak RSS."""
    start = time.perf_counter()
    result = read_amazon2023(reviews=path)
    seconds = time.perf_counter() - start
    rows_read = sum(result.rejects.rows_read.values())
    return {
        "interactions": result.interactions.height,
        "duplicates": result.counters["duplicate_reviews_dropped"],
        "rows_read": rows_read,
        "seconds": seconds,
        "rows_per_s": rows_read / seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started its program (``VmHWM``, Linux).

    Not ``ru_maxrss``: Linux keeps that across ``exec``, so a child forked from a large parent (a test session
    holding models) would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise OSError("no VmHWM in /proc/self/status: peak memory is measured on Linux only")


if __name__ == "__main__":  # python -m bench.synthetic_reviews <file>: ingest it in a fresh process, print JSON
    print(json.dumps(ingest_figures(Path(sys.argv[1]))))

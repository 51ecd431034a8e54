"""The catalogue of data sets semid knows how to ingest: one entry per shared folder, each bound to its reader.

An entry names the reader and the files it takes (by role), so the ingestion stage can fingerprint exactly the
bytes it reads. Add a data set by adding an entry; the Dagster partitions follow this catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ops.ingest.readers.amazon2014 import read_amazon2014
from ops.ingest.readers.amazon2018 import read_amazon2018
from ops.ingest.readers.amazon2023 import read_amazon2023
from ops.ingest.readers.hm import read_hm
from ops.ingest.readers.mind import read_mind
from ops.ingest.readers.p5 import read_p5_sequences
from ops.ingest.readers.recbole import read_recbole
from ops.ingest.result import ReaderResult


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one data set: ``reader(**{role: folder / file})``."""

    name: str
    folder: str  # folder under the data root
    reader: Callable[..., ReaderResult]
    files: Mapping[str, str]  # reader argument -> file path relative to the folder
    text_template: str  # item-text template family used by the embeddings stage: amazon | mind | hm
    description: str

    def paths(self, data_root: Path) -> dict[str, Path]:
        return {role: Path(data_root) / self.folder / name for role, name in self.files.items()}

    def read(self, data_root: Path) -> ReaderResult:
        return self.reader(**self.paths(data_root))


_SPECS = [
    DatasetSpec(
        "amazon2014-beauty",
        "amazon2014-beauty-5core",
        read_p5_sequences,
        {
            "sequences": "Beauty.txt",
            "datamaps": "datamaps.json",
            "items": "Amazon_Beauty.item",
            "item2attributes": "Beauty_item2attributes.json",
        },
        "amazon",
        "Amazon 2014 Beauty 5-core as used by S3-Rec/P5/TIGER/MoC: 22,363 users, 12,101 items, order only.",
    ),
    DatasetSpec(
        "amazon2014-beauty-10core-ratings",
        "amazon2014-beauty-5core",
        read_recbole,
        {"inter": "amazon-beauty.inter.filtered", "items": "Amazon_Beauty.item"},
        "amazon",
        "The 10-core of Beauty with real ratings and timestamps (RecBole atomic files): 1,340 users, 733 items.",
    ),
    DatasetSpec(
        "amazon2014-musical-instruments",
        "amazon2014-musical-instruments-5core-prefix",
        read_amazon2014,
        {"reviews": "Musical_Instruments_5.json"},
        "amazon",
        "First 50 lines of the raw 2014 Musical Instruments 5-core reviews (no meta: items are text-less).",
    ),
    DatasetSpec(
        "amazon2018-gift-cards",
        "amazon2018-gift-cards",
        read_amazon2018,
        {"reviews": "Gift_Cards_5.json.gz", "meta": "meta_Gift_Cards.json.gz"},
        "amazon",
        "Amazon 2018 Gift Cards: complete 5-core reviews and metadata.",
    ),
    DatasetSpec(
        "amazon2018-magazine-subscriptions",
        "amazon2018-magazine-subscriptions",
        read_amazon2018,
        {"reviews": "Magazine_Subscriptions_5.json.gz", "meta": "meta_Magazine_Subscriptions.json.gz"},
        "amazon",
        "Amazon 2018 Magazine Subscriptions: 5-core reviews, 2021 metadata release (HTML titles).",
    ),
    DatasetSpec(
        "amazon2018-all-beauty",
        "amazon2018-all-beauty-5core",
        read_amazon2018,
        {"reviews": "All_Beauty_5.json.gz"},
        "amazon",
        "Amazon 2018 All Beauty 5-core reviews (no metadata; duplicates differing in style are dropped).",
    ),
    DatasetSpec(
        "amazon2018-amazon-fashion",
        "amazon2018-amazon-fashion-5core",
        read_amazon2018,
        {"reviews": "AMAZON_FASHION_5.json.gz"},
        "amazon",
        "Amazon 2018 AMAZON_FASHION 5-core reviews (no metadata).",
    ),
    DatasetSpec(
        "amazon2023-health-personal-care",
        "amazon2023-health-personal-care-meta-sample",
        read_amazon2023,
        {"meta": "meta_Health_and_Personal_Care.jsonl"},
        "amazon",
        "Amazon Reviews 2023 metadata sample (1,001 items, no reviews): a catalogue-only data set.",
    ),
    DatasetSpec(
        "mind-small-sample",
        "mind-small-sample",
        read_mind,
        {"news": "news.tsv", "behaviors": "behaviors.tsv"},
        "mind",
        "MIND-small train subset: 2,000 news, 5,000 impressions with click labels.",
    ),
    DatasetSpec(
        "hm-sample",
        "hm-sample",
        read_hm,
        {"articles": "articles.csv", "transactions": "transactions_train.csv"},
        "hm",
        "H&M sample: 4,903 articles, 10,000 transactions.",
    ),
]

DATASETS: Mapping[str, DatasetSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
DEFAULT_DATASET = "amazon2014-beauty"


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None

"""What every reader returns: raw tables in the normalized schema, the reject log and named counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ops.ingest.rejects import RejectLog
from ops.ingest.schema import IMPRESSIONS, ITEMS, RAW_INTERACTIONS, conform


@dataclass
class ReaderResult:
    """Output of one reader over one data set.

    ``interactions`` rows are in source order within each user (the order `normalize.build_tables` keeps for
    ties in time). ``counters`` names every quirk the reader handled (duplicates dropped, text-less items...),
    so the asset can report them.
    """

    items: pl.DataFrame
    interactions: pl.DataFrame
    rejects: RejectLog
    impressions: pl.DataFrame | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.items = conform(self.items, ITEMS, "items")
        self.interactions = conform(self.interactions, RAW_INTERACTIONS, "interactions")
        if self.impressions is not None:
            self.impressions = conform(self.impressions, IMPRESSIONS, "impressions")

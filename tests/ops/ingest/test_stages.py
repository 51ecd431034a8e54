"""The ingest stages: inputs cached under the hash of the bytes parsed, splits keyed on interactions only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ops.ingest.datasets import DatasetSpec
from ops.ingest.errors import IngestError
from ops.ingest.formats import Format
from ops.ingest.readers.amazon2014 import read_amazon2014
from ops.ingest.stages import KCoreConfig, NormalizeConfig, SplitConfig, kcore, normalize, splits

FOLDER = "toys"


def toys_spec(reader=read_amazon2014) -> DatasetSpec:
    return DatasetSpec(
        "toys",
        Format("amazon2014", reader, ("meta",)),
        FOLDER,
        {"reviews": "reviews_Toys_5.json", "meta": "meta_Toys.json"},
        "amazon",
        "the hand-written Amazon 2014 fixtures",
    )


@pytest.fixture
def data_root(fixtures_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    shutil.copytree(fixtures_dir / "amazon2014", root / FOLDER)
    return root


def run_all(data_root: Path, output_root: Path):
    normalized = normalize(toys_spec(), data_root, output_root, NormalizeConfig())
    core = kcore(normalized, output_root, KCoreConfig(k=1))
    return normalized, core, splits(core, output_root, SplitConfig())


def test_a_text_only_edit_keeps_the_splits_version(data_root, tmp_path):
    output_root = tmp_path / "out"
    normalized, core, split = run_all(data_root, output_root)
    meta = data_root / FOLDER / "meta_Toys.json"
    meta.write_text(meta.read_text().replace("Blokko Stacking Tower", "Blokko Tower"))
    edited_normalized, edited_core, edited_split = run_all(data_root, output_root)
    assert edited_normalized.fingerprint != normalized.fingerprint and edited_core.fingerprint != core.fingerprint
    assert edited_split.fingerprint == split.fingerprint and edited_split.cache_hit


def test_an_interaction_edit_makes_new_splits(data_root, tmp_path):
    output_root = tmp_path / "out"
    *_, split = run_all(data_root, output_root)
    reviews = data_root / FOLDER / "reviews_Toys_5.json"
    reviews.write_text(reviews.read_text().replace('"AUSER00003"', '"AUSER00004"'))
    *_, edited_split = run_all(data_root, output_root)
    assert edited_split.fingerprint != split.fingerprint and not edited_split.cache_hit


def test_a_file_replaced_after_hashing_is_never_cached_under_the_old_hash(data_root, tmp_path):
    """The reader sees other bytes than those fingerprinted: the build fails and nothing is published."""
    reviews = data_root / FOLDER / "reviews_Toys_5.json"
    original = reviews.read_bytes()
    replacement = original.replace(b'"AUSER00003"', b'"AUSER00004"')

    def replaced_then_read(reviews: Path, meta: Path):
        reviews.write_bytes(replacement)  # another process swaps the file between hashing and parsing
        return read_amazon2014(reviews, meta)

    output_root = tmp_path / "out"
    with pytest.raises(IngestError, match="changed while it was read") as error:
        normalize(toys_spec(replaced_then_read), data_root, output_root, NormalizeConfig())
    assert error.value.file == str(reviews)
    assert not list((output_root / "normalized").glob("*/manifest.json"))  # no version published
    reviews.write_bytes(original)
    first = normalize(toys_spec(), data_root, output_root, NormalizeConfig())
    reviews.write_bytes(replacement)
    second = normalize(toys_spec(), data_root, output_root, NormalizeConfig())
    assert first.fingerprint != second.fingerprint and not second.cache_hit


def test_kcore_manifest_counts_what_it_dropped(data_root, tmp_path):
    normalized = normalize(toys_spec(), data_root, tmp_path / "out", NormalizeConfig())
    core = kcore(normalized, tmp_path / "out", KCoreConfig(k=2))
    assert (
        core.manifest["dropped"]["interactions"]
        == normalized.manifest["rows"]["interactions"] - core.manifest["rows"]["interactions"]
    )
    assert core.manifest["dropped"]["interactions"] > 0

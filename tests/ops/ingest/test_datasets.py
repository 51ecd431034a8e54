"""The data-set registry: YAML files in, specs out; clear errors naming file and field; fingerprints per data set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ops.ingest import datasets
from ops.ingest.datasets import (
    BUILTIN_DATASETS,
    DATASETS,
    DatasetFileError,
    NoItemTextError,
    get_dataset,
    load_dataset_file,
    load_registry,
    registry_sources,
)
from ops.ingest.formats import FORMATS
from ops.ingest.stages import KCoreConfig, NormalizeConfig, SplitConfig, kcore, normalize, splits

TOYS_YAML = """\
description: the hand-written Amazon 2014 fixtures
format: amazon2014
folder: toys
files:
  reviews: reviews_Toys_5.json
  meta: meta_Toys.json
text: amazon
kcore: {k: 1}
"""

P5_YAML = """\
format: p5
folder: p5toys
files:
  sequences: Toys.txt
  datamaps: datamaps.json
"""


@pytest.fixture
def data_root(fixtures_dir: Path, tmp_path: Path) -> Path:
    """The amazon2014 and p5 fixtures as two data-set folders under a data root."""
    root = tmp_path / "raw"
    shutil.copytree(fixtures_dir / "amazon2014", root / "toys")
    shutil.copytree(fixtures_dir / "p5", root / "p5toys")
    return root


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_builtin_data_sets_are_the_yaml_files_of_datasets():
    assert set(DATASETS) == {path.stem for path in BUILTIN_DATASETS.glob("*.yaml")}
    beauty = get_dataset("amazon2014-beauty")
    assert beauty.format is FORMATS["p5"] and beauty.text_template == "amazon"
    assert beauty.source == BUILTIN_DATASETS / "amazon2014-beauty.yaml"
    with pytest.raises(KeyError, match="unknown data set 'amazon2014-beuty'; known: .*amazon2014-beauty"):
        get_dataset("amazon2014-beuty")


def test_user_folders_come_from_the_environment_after_the_builtins(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b.yaml"
    sources = registry_sources({datasets.USER_DATASETS_ENV: f"{first}:{second}"})
    assert sources == [BUILTIN_DATASETS, first, second]
    assert registry_sources({}) == [BUILTIN_DATASETS]


def test_the_command_line_check_refuses_an_unknown_name(capsys):
    assert datasets.main(["amazon2014-beauty"]) == 0
    assert datasets.main(["amazon2014-beuty"]) == 1
    assert "unknown data set 'amazon2014-beuty'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (("format: amazon2014", "format: amazon2041"), "format", "unknown format 'amazon2041'; known: p5"),
        (("  reviews: ", "  review: "), "files.review", "takes no 'review' file; it takes reviews \\(required\\)"),
        (("  reviews: reviews_Toys_5.json\n", ""), "files.reviews", "needs this file"),
        (("  meta: meta_Toys.json\n", ""), "text", "reads item text from meta, which `files` does not name"),
        (("text: amazon", "text: amazn"), "text", "unknown template 'amazn'"),
        (("folder: toys", "folder: ../toys"), "folder", "relative path without '..'"),
        (("format:", "fromat:"), "format", "Field required; also `fromat`: Extra inputs are not permitted"),
        (("kcore: {k: 1}", "kcore: {k: 0}"), "kcore", "k >= 1"),
        (("kcore: {k: 1}", "splits: {train_fraction: 0.9}"), "splits", "sum to 1: train 0.9 \\+ valid 0.1"),
    ],
)
def test_a_bad_file_fails_naming_the_file_and_the_field(tmp_path, edit, field, reason):
    path = write(tmp_path / "yaml", "toys", TOYS_YAML.replace(*edit))
    with pytest.raises(DatasetFileError, match=reason) as error:
        load_dataset_file(path)
    assert error.value.file == path and error.value.field == field
    assert str(error.value).startswith(f"{path}: field `{field}`: ")


def test_a_name_declared_twice_names_both_files(tmp_path):
    first = write(tmp_path / "builtin", "toys", TOYS_YAML)
    second = write(tmp_path / "mine", "toys", TOYS_YAML)
    with pytest.raises(DatasetFileError, match=f"'toys' is also declared by {first}") as error:
        load_registry([tmp_path / "builtin", tmp_path / "mine"])
    assert error.value.file == second


def test_a_missing_raw_file_names_the_yaml_file_and_field(data_root, tmp_path):
    spec = load_dataset_file(write(tmp_path / "yaml", "toys", TOYS_YAML.replace("meta_Toys.json", "meta_Toy.json")))
    with pytest.raises(Exception, match=f"meta_Toy.json: .*'toys' \\(files.meta in {tmp_path / 'yaml'}/toys.yaml\\)"):
        normalize(spec, data_root, tmp_path / "out", NormalizeConfig())


def test_format_code_is_the_reader_and_the_readers_it_imports():
    assert {path.name for path in FORMATS["p5"].sources} == {"p5.py", "recbole.py"}
    assert {path.name for path in FORMATS["amazon2014"].sources} == {"amazon2014.py", "amazon2018.py"}


def test_registering_another_data_set_keeps_every_version(data_root, tmp_path):
    """Fingerprints hash a data set's own spec: a second YAML file (and a new description) changes nothing."""
    folder = tmp_path / "yaml"
    write(folder, "toys", TOYS_YAML)
    first = normalize(load_registry([folder])["toys"], data_root, tmp_path / "out", NormalizeConfig())
    write(folder, "p5toys", P5_YAML)
    write(folder, "toys", TOYS_YAML.replace("the hand-written", "hand-written"))
    again = normalize(load_registry([folder])["toys"], data_root, tmp_path / "out", NormalizeConfig())
    assert again.fingerprint == first.fingerprint and again.cache_hit


def test_a_data_set_without_item_text_ingests_and_refuses_semantic_ids(data_root, tmp_path):
    """P5 sequences without the RecBole item file: the ID-based stages run; asking for item text says why not."""
    spec = load_dataset_file(write(tmp_path / "yaml", "p5toys", P5_YAML))
    normalized = normalize(spec, data_root, tmp_path / "out", NormalizeConfig())
    core = kcore(normalized, tmp_path / "out", KCoreConfig(k=1))
    split = splits(core, tmp_path / "out", SplitConfig())
    assert normalized.manifest["rows"]["interactions"] == 10 and normalized.manifest["textless_items"] == 7
    assert split.manifest["splits"]["leave_one_out"]["test"] == 3
    with pytest.raises(NoItemTextError, match="'p5toys' has no item text .*p5toys.yaml names no `text`.*Semantic IDs"):
        spec.text_template  # noqa: B018 -- the property is the check every Semantic-ID stage goes through


def test_stage_defaults_come_from_the_yaml(tmp_path):
    text = TOYS_YAML.replace(
        "kcore: {k: 1}", "kcore: {k: 3}\nsplits: {seed: 7, train_fraction: 0.7, test_fraction: 0.2}"
    )
    spec = load_dataset_file(write(tmp_path / "yaml", "toys", text))
    assert spec.kcore == KCoreConfig(k=3)
    assert spec.splits == SplitConfig(seed=7, train_fraction=0.7, valid_fraction=0.1, test_fraction=0.2)


def test_a_user_copy_of_a_shared_folder_ingests_with_the_same_counts(shared_data, tmp_path):
    """A YAML file outside the repo, over a copy of Gift Cards under another name, gives the built-in's tables."""
    builtin = get_dataset("amazon2018-gift-cards")
    root = tmp_path / "raw"
    shutil.copytree(shared_data(builtin.folder), root / "my-cards")
    text = (BUILTIN_DATASETS / "amazon2018-gift-cards.yaml").read_text().replace(builtin.folder, "my-cards")
    mine = load_registry([write(tmp_path / "yaml", "my-gift-cards", text)])["my-gift-cards"]

    def counts(spec, data_root):
        normalized = normalize(spec, data_root, tmp_path / "out", NormalizeConfig())
        core = kcore(normalized, tmp_path / "out", spec.kcore)
        split = splits(core, tmp_path / "out", spec.splits)
        return normalized.fingerprint, normalized.manifest["rows"], core.manifest["rows"], split.manifest["splits"]

    mine_fingerprint, *mine_counts = counts(mine, root)
    builtin_fingerprint, *builtin_counts = counts(builtin, shared_data(builtin.folder).parent)
    assert mine_counts == builtin_counts
    assert mine_counts[0]["interactions"] == 2972
    assert mine_fingerprint != builtin_fingerprint  # another data set: its own version, never the built-in's

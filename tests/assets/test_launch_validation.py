"""Choice fields are enums of the config schema, split fractions must sum to 1, and the data set must be registered:
each mistake is refused when the run is launched, before any step."""

import pytest
import yaml
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    DagsterUnknownPartitionError,
    materialize,
    validate_run_config,
)

from assets import ctr, embeddings, ingest, tokenizers
from pipelines.definitions import ALL_ASSETS, defs
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("asset", "field", "typo"),
    [
        (ctr.ctr_model, "tokenizer", "rqvea"),
        (tokenizers.TOKENIZER_ASSETS["rqvae"], "codebook_update", "emma"),
        (embeddings.item_embeddings, "pooling", "max"),
        (ctr.ctr_model, "backbone", "dcn"),
        (ctr.ctr_samples, "mode", "clicks"),
    ],
)
def test_a_misspelled_choice_fails_at_launch_naming_the_field(asset, field, typo, tmp_resources):
    instance = DagsterInstance.ephemeral()
    name = asset.key.path[-1]
    with pytest.raises(DagsterInvalidConfigError, match=rf"{field}.*not in enum type.*{typo}"):
        materialize(
            ALL_ASSETS,
            resources=tmp_resources,
            partition_key="amazon2018-gift-cards",
            run_config={"ops": {name: {"config": {field: typo}}}},
            instance=instance,
            selection=[asset],
        )
    assert instance.get_runs() == []  # nothing was launched


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"train_fraction": 0.9, "valid_fraction": 0.1, "test_fraction": 0.1}, "must sum to 1: .* = 1.1"),
        ({"train_fraction": 0.7}, "set train_fraction, valid_fraction and test_fraction together"),
        ({"train_fraction": 1.2, "valid_fraction": -0.1, "test_fraction": -0.1}, "train_fraction = 1.2 is outside"),
    ],
)
def test_split_fractions_that_do_not_sum_to_one_fail_at_launch(split, message, tmp_resources):
    instance = DagsterInstance.ephemeral()
    with pytest.raises(DagsterInvalidConfigError, match=message):
        materialize(
            ALL_ASSETS,
            resources=tmp_resources,
            partition_key="amazon2018-gift-cards",
            run_config={"ops": {"dataset_splits": {"config": split}}},
            instance=instance,
            selection=[ingest.dataset_splits],
        )
    assert instance.get_runs() == []  # nothing was launched


def test_an_unknown_data_set_is_refused_before_a_run(tmp_resources):
    instance = DagsterInstance.ephemeral()
    with pytest.raises(DagsterUnknownPartitionError, match="amazon2018-gift-crads"):
        materialize(
            ALL_ASSETS,
            resources=tmp_resources,
            partition_key="amazon2018-gift-crads",
            instance=instance,
            selection=[ingest.normalized_dataset],
        )
    assert instance.get_runs() == []


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_preset_is_valid_run_config_of_the_overview_job(preset):
    """`make run PRESET=<preset>` passes presets/<preset>.yaml to the overview job: a renamed asset or field fails
    here, not minutes into a newcomer's first run."""
    config = yaml.safe_load((REPO_ROOT / "presets" / f"{preset}.yaml").read_text())
    validate_run_config(defs.get_job_def("overview"), config)

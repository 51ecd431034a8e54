"""Choice fields are enums of the config schema: a typo is refused when the run is launched, before any step."""

import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError, materialize

from assets import ctr, embeddings, tokenizers
from pipelines.definitions import ALL_ASSETS


@pytest.mark.parametrize(
    ("asset", "field", "typo"),
    [
        (tokenizers.tokenizer, "kind", "rqvea"),
        (tokenizers.tokenizer, "codebook_update", "emma"),
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

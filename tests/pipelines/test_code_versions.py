"""Code versions: every computed asset has one, and it changes exactly when the code its stage runs changes."""

from pathlib import Path

from dagster import AssetKey

from pipelines import code_versions
from pipelines.code_versions import asset_code_version
from pipelines.definitions import defs


def test_every_computed_asset_has_a_code_version_and_raw_files_have_none():
    graph = defs.get_repository_def().asset_graph
    versions = {key.to_user_string(): graph.get(key).code_version for key in graph.get_all_asset_keys()}
    assert versions.pop("raw_files") is None
    assert all(versions.values()), [key for key, version in versions.items() if not version]
    assert versions["tokenizer_rqvae"] == versions["tokenizer_moc"], "one group, one module: one version"
    assert versions["semantic_ids_lamia"] != versions["semantic_ids_rqvae"], "LAMIA's table also runs the llm stage"
    assert len({versions["kcore_dataset"], versions["item_embeddings"], versions["report"]}) == 3
    assert graph.get(AssetKey("semantic_ids_moc")).code_version == versions["semantic_ids_rqvae"]


def test_the_version_follows_the_ops_code_of_the_group(tmp_path, monkeypatch):
    module = tmp_path / "assets_module.py"
    module.write_text("x = 1\n")
    package = tmp_path / "ops" / "quantizers"
    package.mkdir(parents=True)
    (package / "vq.py").write_text("codebook = 256\n")
    monkeypatch.setattr(code_versions, "OPS", tmp_path / "ops")
    monkeypatch.setattr(code_versions, "SHARED", ())
    monkeypatch.setitem(code_versions.GROUP_CODE, "tokenizers", ("quantizers",))
    before = asset_code_version(Path(module), "tokenizers", "tokenizer_rqvae")
    assert asset_code_version(Path(module), "tokenizers", "tokenizer_rqvae") == before
    (package / "vq.py").write_text("codebook = 512\n")
    assert asset_code_version(Path(module), "tokenizers", "tokenizer_rqvae") != before
    assert asset_code_version(Path(module), "unknown", "x") == asset_code_version(Path(module), None, "x")

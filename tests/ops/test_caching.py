"""The caching contract: a second call is a hit with no work, a crash mid-build leaves nothing, config changes version."""

from __future__ import annotations

import pytest

from ops.caching import code_version, existing_version, fingerprint, run_cached


def test_second_call_is_a_cache_hit_without_work(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("hello")
        return {"rows": 1}

    first = run_cached(tmp_path, "stage", "abc", build)
    second = run_cached(tmp_path, "stage", "abc", build)
    assert len(calls) == 1
    assert not first.cache_hit and second.cache_hit
    assert second.manifest["rows"] == 1
    assert (second.file("out.txt")).read_text() == "hello"


def test_crash_mid_build_leaves_no_version_and_rerun_completes(tmp_path):
    def crashing(folder):
        (folder / "half.txt").write_text("partial")
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_cached(tmp_path, "stage", "abc", crashing)
    assert not (tmp_path / "stage" / "abc").exists()
    assert list((tmp_path / "stage").iterdir()) == []
    done = run_cached(tmp_path, "stage", "abc", lambda folder: {"ok": True})
    assert not done.cache_hit and done.manifest["ok"] is True


def test_fingerprint_ignores_key_order_and_tracks_values():
    assert fingerprint({"a": 1, "b": {"c": 2}}) == fingerprint({"b": {"c": 2}, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_code_version_changes_with_source(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text("x = 1\n")
    before = code_version(package)
    (package / "m.py").write_text("x = 2\n")
    assert code_version(package) != before


VERSION = "0123456789abcdef"
OTHER = "fedcba9876543210"


def test_existing_version_reads_a_stored_version_and_names_the_others_when_missing(tmp_path):
    built = run_cached(tmp_path, "stage", VERSION, lambda folder: {"rows": 3})
    found = existing_version(tmp_path, "stage", VERSION)
    assert found.path == built.path and found.manifest["rows"] == 3
    with pytest.raises(FileNotFoundError, match=rf"stored versions: \['{VERSION}'\]"):
        existing_version(tmp_path, "stage", OTHER)


@pytest.mark.parametrize(
    "pin",
    [
        f"../other/stage/{VERSION}",  # another output root's table, by a relative path
        "/tmp/stage/" + VERSION,  # an absolute path
        f"{VERSION}/..",
        VERSION.upper(),
        VERSION[:8],
        "",
    ],
)
def test_a_pin_that_is_not_a_fingerprint_is_refused_naming_the_stored_versions(tmp_path, pin):
    run_cached(tmp_path / "root", "stage", VERSION, lambda folder: {})
    run_cached(tmp_path / "other", "stage", VERSION, lambda folder: {})  # a real version the pin must not reach
    with pytest.raises(ValueError, match=rf"not a fingerprint.*stored versions: \['{VERSION}'\]"):
        existing_version(tmp_path / "root", "stage", pin)


def test_a_pin_to_a_folder_of_another_stage_is_refused(tmp_path):
    """A version folder copied or linked under the wrong stage is caught by its own manifest."""
    built = run_cached(tmp_path, "tokenizer", VERSION, lambda folder: {})
    (tmp_path / "semantic_ids").mkdir()
    (tmp_path / "semantic_ids" / VERSION).symlink_to(built.path, target_is_directory=True)
    with pytest.raises(ValueError, match="holds tokenizer version"):
        existing_version(tmp_path, "semantic_ids", VERSION)

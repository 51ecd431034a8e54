"""Re-indexing: the raw-files sensor requests a run exactly when a data set's files change, the schedule's request
is well formed, and the raw files are an observed source upstream of the normalized tables."""

import json
import os

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    build_schedule_context,
    build_sensor_context,
    define_asset_job,
    validate_run_config,
)

from assets import raw_files
from ops.ingest.datasets import DEFAULT_DATASET, get_dataset
from pipelines.definitions import defs
from resources import StorageResource

WATCHED = "amazon2014-musical-instruments"  # one small file; every other data set is absent from the tmp root
REVIEW = '{"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1393545600}\n'


@pytest.fixture
def data_root(tmp_path):
    spec = get_dataset(WATCHED)
    (path,) = spec.paths(tmp_path / "raw").values()
    path.parent.mkdir(parents=True)
    path.write_text(REVIEW)
    return tmp_path / "raw"


def tick(data_root, cursor):
    """One evaluation of the sensor against ``data_root``: (run requests, new cursor)."""
    sensor = defs.get_repository_def().get_sensor_def("reindex_on_new_data")
    assert sensor.job_name == "main"
    context = build_sensor_context(
        cursor=cursor,
        resources={"storage": StorageResource(data_root=str(data_root), output_root=str(data_root / "out"))},
        definitions=defs,
    )
    result = sensor.evaluate_tick(context)
    return result.run_requests, result.cursor


def test_a_changed_raw_file_requests_a_main_run_of_its_data_set_only(data_root):
    requests, cursor = tick(data_root, None)
    assert requests == []  # the first tick records the files; switching the sensor on starts nothing
    assert set(json.loads(cursor)) == {WATCHED}

    requests, cursor = tick(data_root, cursor)
    assert requests == []  # nothing changed

    (path,) = get_dataset(WATCHED).paths(data_root).values()
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    requests, cursor = tick(data_root, cursor)
    assert requests == []  # touched, same bytes: the content hash decides

    path.write_text(REVIEW + REVIEW.replace("A1", "A2"))
    requests, cursor = tick(data_root, cursor)
    assert [request.partition_key for request in requests] == [WATCHED]
    assert requests[0].run_key.startswith(f"{WATCHED}:")
    requests, _ = tick(data_root, cursor)
    assert requests == []  # that change is now known


def test_files_of_another_data_set_appearing_request_that_data_set(data_root):
    _, cursor = tick(data_root, None)
    hm = get_dataset("hm-sample")
    for path in hm.paths(data_root).values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("article_id\n")
    requests, cursor = tick(data_root, cursor)
    assert [request.partition_key for request in requests] == ["hm-sample"]
    assert set(json.loads(cursor)) == {WATCHED, "hm-sample"}


def test_the_weekly_schedule_requests_a_valid_main_run():
    schedule = defs.get_repository_def().get_schedule_def("weekly_reindex")
    (request,) = schedule.evaluate_tick(build_schedule_context(repository_def=defs.get_repository_def())).run_requests
    job = defs.resolve_job_def(schedule.job_name)
    assert request.partition_key == DEFAULT_DATASET
    assert request.partition_key in job.partitions_def.get_partition_keys()
    validate_run_config(job, request.run_config)  # raises when the request's config does not fit the job


def test_raw_files_are_observed_by_content_upstream_of_the_normalized_tables(data_root):
    graph = defs.get_repository_def().asset_graph
    assert AssetKey("raw_files") in graph.get(AssetKey("normalized_dataset")).parent_keys
    instance = DagsterInstance.ephemeral()
    storage = StorageResource(data_root=str(data_root), output_root=str(data_root / "out"))

    observation = Definitions(
        assets=[raw_files.raw_files],
        jobs=[define_asset_job("observe_raw_files", [raw_files.raw_files])],
        resources={"storage": storage},
    ).resolve_job_def("observe_raw_files")

    def version():
        assert observation.execute_in_process(instance=instance).success
        record = instance.get_latest_data_version_record(AssetKey("raw_files"), partition_key=WATCHED)
        return record.asset_observation.data_version

    first = version()
    (path,) = get_dataset(WATCHED).paths(data_root).values()
    path.write_text(REVIEW.replace("A1", "A3"))
    assert version() != first and first is not None

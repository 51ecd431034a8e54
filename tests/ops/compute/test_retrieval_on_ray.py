"""The retrieval comparison on Ray (`python -m bench.retrieval --compute ray`): its parts run as Ray tasks on a
local 2-CPU cluster and come back in the parts' order; every trained model is a cached stage, so a second run
is all cache hits and gives the same records."""

from __future__ import annotations

import time

import pytest

from bench.retrieval import PartOptions, Setting, jobs, run_jobs

DATASET = "amazon2014-beauty-10core-ratings"  # 733 items: enough for 256 codes a level, seconds to embed
BUDGET_MINUTES = 0.1  # 6 s of training per model: this test is about where parts run, not about their quality


def test_retrieval_parts_run_as_ray_tasks_and_a_rerun_is_all_cache_hits(shared_data, ray_executor, tmp_path):
    shared_data("amazon2014-beauty-5core")
    setting = Setting.on(DATASET, 0, BUDGET_MINUTES, output_root=tmp_path)
    todo = jobs(["most_popular", "sasrec", "decoder:rqvae"], [0, 1])
    assert [(job.part, job.seed) for job in todo] == [
        ("most_popular", 0),
        ("sasrec", 0),
        ("sasrec", 1),
        ("decoder:rqvae", 0),
        ("decoder:rqvae", 1),
    ]
    start = time.perf_counter()
    first = list(run_jobs(setting, PartOptions(), todo, ray_executor))
    first_seconds = time.perf_counter() - start
    assert [job for job, _, _ in first] == todo
    records = [records for _, records, _ in first]
    assert all(len(part) == 1 for part in records)
    sasrec_runs = [part[0] for job, part, _ in first if job.part == "sasrec"]
    assert sasrec_runs[0]["model_version"] != sasrec_runs[1]["model_version"]  # seeds are versions of their own
    decoder = records[3][0]
    assert decoder["invalid_items"] == 0 and decoder["eval_users"] > 0 and 0 <= decoder["recall@10"] <= 1

    start = time.perf_counter()
    second = list(run_jobs(setting, PartOptions(), todo, ray_executor))
    assert [records for _, records, _ in second] == records  # read back from the cached stages' manifests
    assert time.perf_counter() - start < first_seconds / 2


def test_an_unknown_part_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match=r"unknown parts \['sasrek'\].*most_popular, sasrec"):
        jobs(["most_popular", "sasrek"], [0])

"""Concurrent `main` runs and a `kill -9` on one output root: nothing lost, nothing poisoned.

On a fresh output root and Dagster instance (set up once, as `make setup` does), N `dagster job execute -j main`
processes start at once on one data set; one of them, chosen at random, is killed with SIGKILL (its whole process
group: the CLI and its step processes) at a random moment. Then one more run starts, as a user would after a
crash. A reference run on a second, fresh root gives the bytes every table must have. Checks:

- every run that was not killed succeeded, and so did the run after the kill;
- every published version is complete (its manifest exists, every Parquet file reads, every checkpoint loads)
  and no temporary folder is left behind;
- identical inputs gave identical bytes: each table (Parquet) of each version equals the reference run's, file by
  file, and the same versions exist; checkpoints are compared too and reported, for information (training on a
  loaded machine need not be bit-reproducible, and no table depends on their last bits);
- no Dagster run is left STARTED and no MLflow run RUNNING; the killed run is marked FAILURE;
- rows lost: the row counts in the manifests equal the reference run's (must be 0 lost).

    make bench-faults                                   # = python -m bench.faults; bench/results/faults.json (3 rounds)
    python -m bench.faults --runs 3 --dataset mind-small-sample --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_table, write_result
from ops.caching import FINGERPRINT

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
# A fault test, not a quality run: a small tokenizer and a short CTR fit keep one run to a minute or two.
RUN_CONFIG = {
    "ops": {
        "tokenizer_rqvae": {"config": {"epochs": 20, "codebook_size": 64}},
        "ctr_model": {"config": {"max_epochs": 3}},
    }
}
TABLES = "*.parquet"  # the data products; checkpoints and manifests (timings, run ids) are compared for information


def instance_home(root: Path) -> dict[str, str]:
    """A fresh Dagster home and output root under ``root``, the instance's schema set up once (`make setup`)."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SEMID_OUTPUT_ROOT": str(root / "out"),
        "SEMID_DATA_ROOT": str(DATA_ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    subprocess.run([BIN / "dagster", "instance", "migrate"], env=env, check=True, capture_output=True)
    (root / "run.yaml").write_text(json.dumps(RUN_CONFIG))
    return env


def start_main(root: Path, env: dict[str, str], dataset: str, log: Path) -> subprocess.Popen[bytes]:
    command = [
        BIN / "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "main",
        "--tags", json.dumps({"dagster/partition": dataset}), "-c", root / "run.yaml",
    ]  # fmt: skip
    with open(log, "wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def versions(out: Path) -> list[Path]:
    """Every version folder of every stage (named by a fingerprint), complete or not."""
    return sorted(p for p in out.glob("*/*") if p.is_dir() and FINGERPRINT.fullmatch(p.name))


def digests(out: Path, pattern: str) -> dict[str, str]:
    """``stage/version/file`` -> sha256 of every file matching ``pattern`` in every published version."""
    found = {}
    for version in versions(out):
        for file in sorted(version.rglob(pattern)):
            found[str(file.relative_to(out))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def differing(out: Path, reference: Path, pattern: str) -> list[str]:
    mine, expected = digests(out, pattern), digests(reference, pattern)
    return sorted(path for path in expected.keys() | mine.keys() if mine.get(path) != expected.get(path))


def incomplete_versions(out: Path) -> list[str]:
    """Version folders that are not complete: no manifest, or a table or checkpoint that does not read."""
    import polars as pl
    import torch

    broken = []
    for version in versions(out):
        try:
            json.loads((version / "manifest.json").read_text())
            for table in version.glob("*.parquet"):
                pl.read_parquet(table)
            for checkpoint in version.glob("*.pt"):
                torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 -- any failure to read is what this check reports
            broken.append(f"{version.relative_to(out)}: {type(error).__name__}: {error}")
    return broken


def row_counts(out: Path) -> dict[str, int]:
    """``stage/rows/<table>`` -> count, from every manifest that reports rows (ingest, k-core, samples...)."""
    counts = {}
    for manifest in sorted(out.glob("*/*/manifest.json")):
        rows = json.loads(manifest.read_text()).get("rows")
        stage = manifest.parent.parent.name
        if isinstance(rows, dict):
            counts.update({f"{stage}/rows/{table}": int(n) for table, n in rows.items()})
        elif isinstance(rows, int):
            counts[f"{stage}/rows"] = rows
    return counts


def unfinished_runs(env: dict[str, str], out: Path) -> dict[str, Any]:
    """Dagster runs by status, and MLflow runs still RUNNING, read from the instance and the tracking database."""
    code = """
import json, sys
from dagster import DagsterInstance
from mlflow.tracking import MlflowClient
with DagsterInstance.get() as instance:
    dagster = {run.run_id: run.status.value for run in instance.get_runs()}
client = MlflowClient(tracking_uri=sys.argv[1])
mlflow = [r.info.run_name for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
          if r.info.status == "RUNNING"]
print(json.dumps({"dagster": dagster, "mlflow_running": mlflow}))
"""
    uri = f"sqlite:///{out / 'mlflow' / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-c", code, uri], env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_round(args: argparse.Namespace, seed: int, work: Path) -> dict[str, Any]:
    """One reference run, N concurrent runs with one killed, one run after: the figures of the checks."""
    rng = random.Random(seed)
    shared, reference = work / "shared", work / "reference"

    print(f"reference run on {reference}", flush=True)
    reference_env = instance_home(reference)
    start = time.perf_counter()
    reference_run = start_main(reference, reference_env, args.dataset, work / "reference.log")
    if reference_run.wait() != 0:
        raise SystemExit(f"the reference run failed; see {work / 'reference.log'}")
    reference_seconds = time.perf_counter() - start

    env = instance_home(shared)
    victim = rng.randrange(args.runs)
    kill_at = rng.uniform(*args.kill_window) * reference_seconds
    print(f"{args.runs} concurrent runs on {shared}; run {victim} is killed after {kill_at:.1f} s", flush=True)
    processes = [start_main(shared, env, args.dataset, work / f"run{i}.log") for i in range(args.runs)]
    start = time.perf_counter()
    while time.perf_counter() - start < kill_at and processes[victim].poll() is None:
        time.sleep(0.2)
    killed = processes[victim].poll() is None
    if killed:
        os.killpg(processes[victim].pid, signal.SIGKILL)
    codes = [process.wait() for process in processes]
    after = start_main(shared, env, args.dataset, work / "after-kill.log")
    after_code = after.wait()

    out, reference_out = shared / "out", reference / "out"
    published = {str(v.relative_to(out)) for v in versions(out)}
    expected_versions = {str(v.relative_to(reference_out)) for v in versions(reference_out)}
    counts, expected_counts = row_counts(out), row_counts(reference_out)
    rows_lost = sum(max(expected_counts[key] - counts.get(key, 0), 0) for key in expected_counts)
    runs = unfinished_runs(env, out)
    figures = {
        "dataset": args.dataset,
        "concurrent_runs": args.runs,
        "kills": int(killed),
        "killed_run": victim,
        "kill_after_seconds": round(kill_at, 1),
        "exit_codes": codes,
        "run_after_kill_exit_code": after_code,
        "failed_runs_not_killed": sum(code != 0 for i, code in enumerate(codes) if not (killed and i == victim)),
        "reference_run_seconds": round(reference_seconds, 1),
        "versions_checked": len(published),
        "tables_compared": len(digests(reference_out, TABLES)),
        "tables_differing_from_reference": differing(out, reference_out, TABLES),
        "checkpoints_differing_from_reference": differing(out, reference_out, "*.pt"),
        "versions_not_in_reference": sorted(published - expected_versions),
        "versions_missing": sorted(expected_versions - published),
        "incomplete_versions": incomplete_versions(out),
        "temporary_folders_left": sorted(str(p.relative_to(out)) for p in out.glob("*/.tmp-*")),
        "rows_checked": sum(expected_counts.values()),
        "rows_lost": rows_lost,
        "dagster_runs_by_status": {s: list(runs["dagster"].values()).count(s) for s in set(runs["dagster"].values())},
        "dagster_runs_left_started": sum(s in ("STARTED", "STARTING") for s in runs["dagster"].values()),
        "mlflow_runs_left_running": len(runs["mlflow_running"]),
    }
    passed = (
        killed  # a victim that finished before its moment tested nothing: re-run with an earlier window
        and figures["failed_runs_not_killed"] == 0
        and after_code == 0
        and not figures["tables_differing_from_reference"]
        and not figures["versions_not_in_reference"]
        and not figures["versions_missing"]
        and not figures["incomplete_versions"]
        and not figures["temporary_folders_left"]
        and rows_lost == 0
        and figures["dagster_runs_left_started"] == 0
        and figures["mlflow_runs_left_running"] == 0
    )
    figures["passed"] = passed
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="concurrent main runs (one of them is killed)")
    parser.add_argument("--dataset", default="mind-small-sample", help="partition every run materializes")
    parser.add_argument("--seed", type=int, default=0, help="which run is killed, and when (round r: seed + r)")
    parser.add_argument("--rounds", type=int, default=3, help="independent rounds, each with its own kill moment")
    parser.add_argument(
        "--kill-window",
        type=float,
        nargs=2,
        default=(0.2, 0.9),
        help="the kill comes at a random moment in this range, as fractions of the reference run's duration (the "
        "concurrent runs share the cores, so each takes longer than the reference: the kill lands mid-run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary roots for inspection")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="semid-faults-"))
    rounds = [one_round(args, args.seed + r, work / f"round{r}") for r in range(args.rounds)]
    summary = {
        "rounds": len(rounds),
        "runs": sum(r["concurrent_runs"] + 1 for r in rounds),  # the concurrent ones and the one after the kill
        "kills": sum(r["kills"] for r in rounds),
        "versions_checked": sum(r["versions_checked"] for r in rounds),
        "tables_compared": sum(r["tables_compared"] for r in rounds),
        "rows_checked": sum(r["rows_checked"] for r in rounds),
        "rows_lost": sum(r["rows_lost"] for r in rounds),
        "passed": all(r["passed"] for r in rounds),
    }
    columns = ("kills", "kill_after_seconds", "reference_run_seconds", "versions_checked", "rows_lost", "passed")
    print_table([{"round": i, **{c: r[c] for c in columns}} for i, r in enumerate(rounds)])
    print_table([summary])
    write_result("faults", {**summary, "per_round": rounds}, notes=f"logs and roots under {work}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if not summary["passed"]:
        raise SystemExit(f"fault check failed: {json.dumps(rounds, indent=1)}")


if __name__ == "__main__":
    main()

"""CTR training as a ``torchrun`` DDP job: `train_ctr_stage`'s computation, data-parallel over each global batch.

`ddp_train_ctr_stage` is the cached stage (the CTR checkpoint format, history and manifest entries of
`ops.ctr.stage.train_ctr_stage`, plus the world size); it launches ``python -m ops.compute.ctr_ddp`` on
``nproc`` processes. Every rank holds the whole (small, encoded) sample matrix, draws the same shuffles, and
trains through `SplitBatch`, so the unchanged `ops.ctr.train.fit` loop gives one process's loss curve. Rank 0
reports through `ops.compute.progress` (Dagster Pipes when an asset launched the job, and its printed output) and
writes the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ops.caching import StageOutput, code_version, existing_version, fingerprint, run_cached
from ops.compute.ddp import Rank, SplitBatch, init_from_env
from ops.compute.progress import JobProgress, epoch_entry, job_progress
from ops.compute.torchrun import LaunchEnv, LineFn, torchrun
from ops.ctr.models import build_model
from ops.ctr.stage import (
    CHECKPOINT,
    CTR_CODE,
    HISTORY,
    TRAIN_STAGE,
    CTRConfig,
    save_checkpoint,
    training_data,
    training_inputs,
)
from ops.ctr.train import fit
from ops.tables import write_text_atomic

EPOCH_PREFIX = "ctr-epoch "  # marks rank 0's per-epoch JSON lines in the job's printed output
RESULT = "result.json"  # rank 0's manifest entries, read back by the stage and then removed


def ddp_train_ctr_stage(
    output_root: Path,
    samples: StageOutput,
    kcore: StageOutput,
    sid_table: StageOutput | None,
    config: CTRConfig,
    nproc: int = 2,
    threads: int = 1,
    on_line: LineFn | None = None,
    launch_env: LaunchEnv | None = None,
) -> StageOutput:
    """One CTR model trained by ``nproc`` DDP processes of ``threads`` threads each (cached like any stage);
    ``on_line`` and ``launch_env`` as in `torchrun` (a cache hit launches nothing)."""
    stage_fingerprint = fingerprint(
        {
            **training_inputs(samples, kcore, sid_table, config),
            "code": code_version(CTR_CODE, Path(__file__).resolve().parent),
            "ddp_world": nproc,  # float summation order differs from one process: a version of its own
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        args = ["--samples", samples.path, "--kcore", kcore.path, "--config", json.dumps(config.to_dict())]
        args += ["--out", str(folder)] + (["--sid-table", sid_table.path] if sid_table is not None else [])
        torchrun(__name__, args, nproc, threads, on_line, launch_env)
        result = folder / RESULT
        entries = json.loads(result.read_text())
        result.unlink()
        return entries

    return run_cached(output_root, TRAIN_STAGE, stage_fingerprint, build)


def epoch_log(line: str) -> dict[str, Any] | None:
    """The epoch entry in one printed line of the job's output, or None for any other line."""
    return epoch_entry(line, EPOCH_PREFIX)


def _stage(path: str) -> StageOutput:
    """The published stage version at ``path`` (``<output_root>/<stage>/<fingerprint>``), manifest checked."""
    folder = Path(path)
    return existing_version(folder.parent.parent, folder.parent.name, folder.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--kcore", required=True)
    parser.add_argument("--sid-table")
    parser.add_argument("--config", required=True, help="CTRConfig.to_dict() as JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rank = init_from_env()
    with job_progress(EPOCH_PREFIX, rank.is_main) as progress:
        _train(args, rank, progress)
    dist.barrier()
    dist.destroy_process_group()


def _train(args: argparse.Namespace, rank: Rank, progress: JobProgress) -> None:
    """One rank's share of the job; rank 0 reports each epoch and writes the model, its history and manifest."""
    config = CTRConfig.from_dict(json.loads(args.config))
    sid_table = _stage(args.sid_table) if args.sid_table else None
    encoded, data = training_data(_stage(args.samples), _stage(args.kcore), sid_table, config, rank.device)
    progress.log(
        f"DDP {config.backbone}: {rank.world} ranks ({dist.get_backend()}), each {torch.get_num_threads()} thread(s), "
        f"global batch {config.train.batch_size}, at most {config.train.max_epochs} epochs"
    )
    model, result = fit(
        lambda: SplitBatch(build_model(config.backbone, config.resolved_model(), encoded.features, config.fusion)),
        data,
        config.train,
        progress.epoch,
    )
    if rank.is_main:
        out = Path(args.out)
        save_checkpoint(model.unwrapped, config, encoded.features, out / CHECKPOINT)
        write_text_atomic(out / HISTORY, json.dumps(result.history, indent=1))
        entries = {
            "backbone": config.backbone,
            "config": config.to_dict(),
            "test_auc": result.test_auc,
            "test_logloss": result.test_logloss,
            "valid_auc": result.valid_auc,
            "epochs": len(result.history),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.train_seconds, 3),
            "samples_per_second": round(result.samples_per_second, 1),
            "features": [dataclasses.asdict(feature) for feature in encoded.features],
            "samples": Path(args.samples).name,
            "ddp": {"world": rank.world, "backend": dist.get_backend()},
        }
        write_text_atomic(out / RESULT, json.dumps(entries, default=str))
        progress.log(f"rank 0 wrote the checkpoint: best epoch {result.best_epoch}, test AUC {result.test_auc:.4f}")


if __name__ == "__main__":
    main()

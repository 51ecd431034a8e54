"""Launch a Python module as a ``torchrun`` job on this machine, its output streamed line by line to a callback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

LineFn = Callable[[str], None]
# Opened around the job: gives the environment variables through which the job reports back to its launcher
# (a Dagster Pipes session's, see assets/pipes.py), and closes that channel when the job is done.
LaunchEnv = Callable[[], AbstractContextManager[Mapping[str, str]]]


def torchrun(
    module: str,
    args: Sequence[str],
    nproc: int,
    threads: int = 1,
    on_line: LineFn | None = None,
    launch_env: LaunchEnv | None = None,
    timeout: float = 3600,
) -> None:
    """``torchrun --standalone --nproc-per-node nproc -m module args``; raises with the output tail if it fails.

    Each process gets ``threads`` intra-op threads (OMP_NUM_THREADS), so ``nproc`` x ``threads`` is what the
    job uses. ``on_line`` hears every output line as it comes; ``launch_env`` adds the variables of a reporting
    channel for the job's lifetime.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", module, *args]
    tail: list[str] = []
    with (launch_env or _no_channel)() as channel_env:
        env = {**os.environ, **channel_env, "OMP_NUM_THREADS": str(threads)}
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as job:
            assert job.stdout is not None
            for line in job.stdout:
                tail = [*tail[-40:], line.rstrip("\n")]
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            code = job.wait(timeout=timeout)
    if code != 0:
        raise RuntimeError(f"torchrun of {module} failed with exit code {code}:\n" + "\n".join(tail))


def _no_channel() -> AbstractContextManager[Mapping[str, str]]:
    return nullcontext({})

"""Launch a Python module as a ``torchrun`` job on this machine, its output streamed line by line to a callback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence

LineFn = Callable[[str], None]


def torchrun(
    module: str, args: Sequence[str], nproc: int, threads: int = 1, on_line: LineFn | None = None, timeout: float = 3600
) -> None:
    """``torchrun --standalone --nproc-per-node nproc -m module args``; raises with the output tail if it fails.

    Each process gets ``threads`` intra-op threads (OMP_NUM_THREADS), so ``nproc`` x ``threads`` is what the
    job uses. ``on_line`` hears every output line as it comes (a Dagster log, a pipes message reader).
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", module, *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    tail: list[str] = []
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as job:
        assert job.stdout is not None
        for line in job.stdout:
            tail = [*tail[-40:], line.rstrip("\n")]
            if on_line is not None:
                on_line(line.rstrip("\n"))
        code = job.wait(timeout=timeout)
    if code != 0:
        raise RuntimeError(f"torchrun of {module} failed with exit code {code}:\n" + "\n".join(tail))

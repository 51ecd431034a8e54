"""The one place where the torch device, the compute dtype and the CPU thread count are chosen.

Every model in ``ops/`` asks `placement()` instead of testing ``torch.cuda.is_available()`` itself, so a run
uses one consistent policy: on a GPU, bfloat16 where the card supports it (same range as float32, so no
overflow in LLM activations) else float16; on the CPU, float32 (CPU half-precision matmuls are slower, not
faster, and would break the 1e-5 padding-invariance guarantees the tests check).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype  # dtype weights are loaded in and activations computed in
    threads: int  # intra-op CPU threads torch uses (also bounds tokenizer/data work we parallelize)


def available_cpus() -> int:
    """CPUs this process may run on (respects cgroup/affinity limits, unlike ``os.cpu_count()``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def placement() -> Placement:
    """Choose device and dtype, and set torch's thread count once per process."""
    threads = available_cpus()
    torch.set_num_threads(threads)
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Placement(torch.device("cuda"), dtype, threads)
    return Placement(torch.device("cpu"), torch.float32, threads)


def cpu_placement() -> Placement:
    """Float32 on the CPU whatever hardware is present: for reference computations and exact comparisons."""
    return Placement(torch.device("cpu"), torch.float32, placement().threads)

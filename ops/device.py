"""The one place where the torch device, the compute dtype and the CPU thread count are chosen.

Every model in ``ops/`` asks `placement()` instead of testing ``torch.cuda.is_available()`` itself, so a run
uses one consistent policy: on a GPU, bfloat16 where the card supports it (same range as float32, so no
overflow in LLM activations) else float16; on the CPU, float32 (CPU half-precision matmuls are slower, not
faster, and would break the 1e-5 padding-invariance guarantees the tests check).

Training that opts into mixed precision (`Placement.autocast`) runs its matmuls in bfloat16 where the hardware
has native bfloat16 arithmetic: a bf16-capable GPU, or a CPU with AMX or AVX512-BF16 (TIGER trains 1.6x faster
under it on this machine's CPU). Weights, optimizer state and reductions stay float32. `Precision.BF16` forces
that path on any hardware (emulated, slower, on a CPU without native bf16), so tests check both numeric paths on
every machine rather than only the one their CPU happens to pick.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from enum import StrEnum

import torch


class Precision(StrEnum):
    """The numeric path of training steps."""

    AUTO = "auto"  # bf16 autocast where the hardware multiplies bf16 natively, float32 elsewhere
    BF16 = "bf16"  # bf16 autocast on any hardware (emulated where not native: slower; for tests and comparisons)
    FLOAT32 = "float32"  # no autocast


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype  # dtype weights are loaded in and activations computed in
    threads: int  # intra-op CPU threads torch uses (also bounds tokenizer/data work we parallelize)
    autocast_dtype: torch.dtype | None = None  # mixed-precision training dtype; None: the hardware has no fast one

    def autocast(self, precision: Precision | str = Precision.AUTO) -> contextlib.AbstractContextManager[object]:
        """Mixed-precision region for training steps; a no-op for float32, and for AUTO where ``autocast_dtype``
        is None."""
        precision = Precision(precision)
        dtype = torch.bfloat16 if precision == Precision.BF16 else self.autocast_dtype
        if precision == Precision.FLOAT32 or dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)


def available_cpus() -> int:
    """CPUs this process may run on (respects cgroup/affinity limits, unlike ``os.cpu_count()``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def placement() -> Placement:
    """Choose device and dtype, and set torch's thread count once per process."""
    threads = available_cpus()
    torch.set_num_threads(threads)
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 else torch.float16
        return Placement(torch.device("cuda"), dtype, threads, torch.bfloat16 if bf16 else None)
    return Placement(torch.device("cpu"), torch.float32, threads, torch.bfloat16 if cpu_has_bf16() else None)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX tiles or AVX512-BF16); elsewhere bf16 is emulated, slower."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own probes (private, so guarded)
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def cpu_placement() -> Placement:
    """Float32 on the CPU whatever hardware is present: for reference computations and exact comparisons."""
    return Placement(torch.device("cpu"), torch.float32, placement().threads)

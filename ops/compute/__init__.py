"""Where embarrassingly parallel work runs: in this process (`local`, the default) or on a Ray cluster (`ray`).

Stages take an `Executor` and call `map` (stateless tasks) or `map_with_state` (workers that build something
expensive once, such as a model, and then serve many inputs). Results come back in input order either way, so a
stage's output does not depend on where it ran. `executor(config)` builds one from a `ComputeConfig`.
"""

from ops.compute.config import ComputeConfig, ComputeMode
from ops.compute.executor import Executor, LocalExecutor, executor

__all__ = ["ComputeConfig", "ComputeMode", "Executor", "LocalExecutor", "executor"]

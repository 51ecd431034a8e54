"""The executor contract and its in-process implementation; `executor` picks the implementation by mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from ops.compute.config import ComputeConfig, ComputeMode

Item = TypeVar("Item")
Result = TypeVar("Result")
State = TypeVar("State")


class Executor(Protocol):
    """Runs independent pieces of work; every method yields results in the order of ``items``."""

    workers: int  # how many pieces run at once: stages cut their work into at least this many shards

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
        """``fn(item)`` for each item, as independent tasks (a task whose worker dies is run again)."""
        ...

    def map_with_state(
        self, make: Callable[[], State], call: Callable[[State, Item], Result], items: Sequence[Item]
    ) -> Iterator[Result]:
        """``call(state, item)`` for each item, where each worker builds its ``state = make()`` once."""
        ...

    def close(self) -> None:
        """Release what the executor started (a private cluster); safe to call twice."""
        ...


class LocalExecutor:
    """Everything in this process, one item after another: today's behaviour and the reference for the others."""

    workers = 1

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
        return (fn(item) for item in items)

    def map_with_state(
        self, make: Callable[[], State], call: Callable[[State, Item], Result], items: Sequence[Item]
    ) -> Iterator[Result]:
        if not items:
            return iter(())
        state = make()
        return (call(state, item) for item in items)

    def close(self) -> None:
        return None


def executor(config: ComputeConfig | None = None) -> Executor:
    """The executor ``config`` asks for; Ray is imported only in ``ray`` mode (it is the optional ``scale`` extra)."""
    config = config or ComputeConfig()
    if config.mode == ComputeMode.LOCAL:
        return LocalExecutor()
    from ops.compute.ray_executor import RayExecutor  # optional dependency: the `scale` extra

    return RayExecutor(config)

"""Dagster Pipes around a job an asset launches as processes of its own (``torchrun``).

`pipes_launch` opens a Pipes session for the job's lifetime and gives the environment variables that point the
job at it (`ops.compute.torchrun.LaunchEnv`). The job's rank 0 (`ops.compute.progress`) then streams its log
lines into this Dagster run as they are written, and reports each epoch as a custom message, which a watcher
thread hands to ``on_message`` within a second: the asset logs it to the run and to its MLflow run while the job
trains. A cache hit launches no job and opens no session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

from dagster import (
    AssetExecutionContext,
    PipesSession,
    PipesTempFileContextInjector,
    PipesTempFileMessageReader,
    open_pipes_session,
)

POLL_SECONDS = 0.5  # how often the watcher looks for new custom messages (the reader itself polls every second)


class _MessageForwarder:
    """Hands each custom message of a Pipes session to ``on_message`` once, in order, from a watcher thread."""

    def __init__(self, session: PipesSession, on_message: Callable[[Any], None]) -> None:
        self._session = session
        self._on_message = on_message
        self._forwarded = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pipes-messages", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def forward_new(self) -> None:
        with self._lock:
            messages = self._session.get_custom_messages()
            for message in messages[self._forwarded :]:
                self._on_message(message)
            self._forwarded = len(messages)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.forward_new()


@contextmanager
def pipes_launch(context: AssetExecutionContext, on_message: Callable[[Any], None]) -> Iterator[Mapping[str, str]]:
    """A Pipes session for one launched job: yields the variables to start it with; every custom message it sent
    has reached ``on_message`` when the block ends (the session reads the last ones as it closes)."""
    with open_pipes_session(context, PipesTempFileContextInjector(), PipesTempFileMessageReader()) as session:
        forwarder = _MessageForwarder(session, on_message)
        with forwarder:
            yield session.get_bootstrap_env_vars()
    forwarder.forward_new()

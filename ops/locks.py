"""Advisory file locks shared by processes and threads: the one primitive behind safe concurrent runs.

`flock` locks belong to an open file description, so two threads that each open the lock file exclude each
other as two processes do, and the kernel drops a lock the moment its holder dies (even by ``kill -9``): a
crashed run can never leave a lock behind that blocks the next one. The lock files themselves are empty and
stay in place; deleting one while another process waits on it would let a third take a second lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent) for the ``with`` block.

    ``on_wait`` is called once when the lock is busy, before blocking, so a caller can say who it waits for.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the only descriptor releases the lock


def is_locked(path: Path) -> bool:
    """Whether a live holder has ``path`` locked right now (False when the file does not exist)."""
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False

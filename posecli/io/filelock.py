"""An advisory lock between posecli processes, for read-modify-write of a shared file.

Four first runs on a fresh store each measure a verdict and rewrite ``runtime-choice.json``:
without a lock, each writes the table it read before the others wrote theirs, and verdicts
are lost. :func:`locked` holds an exclusive ``flock`` on ``<file>.lock`` beside the file while
the caller re-reads, merges and writes. Where locks are not available (no ``fcntl``, a file
system refusing them), the block runs unlocked: the table is a cache, a lost verdict is only
measured again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on ``path``'s lock file (``.<name>.lock`` beside it) while the
    block runs; unlocked when the lock cannot be had (see the module docstring)."""
    fd = None
    if fcntl is not None:
        lock = path.with_name(f".{path.name}.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock

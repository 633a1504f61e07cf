"""Reading files that may not be regular files, without ever hanging.

Opening a FIFO for reading blocks until a writer comes, and reading a pipe blocks until data
comes: a FIFO named like a photo, or one left at a store file's name, would hang posecli for
ever, deaf to SIGTERM (the system call is restarted after the handler runs). Here every file
is opened with ``O_NONBLOCK`` and checked with ``fstat`` first:

- :func:`read_regular`: store files (``runtime-choice.json``) are read only when they are
  regular files; anything else is ``OSError`` (the caller treats it as junk).
- :func:`read_whole`: a photo named on the command line may be a stream (``/dev/stdin``, a
  FIFO, ``<(cat x.jpg)``): it is read in slices, and given up after :data:`STREAM_IDLE_S`
  seconds without data; a stop signal held by the CLI for a safe point is raised in the wait
  (:func:`wake_streams`).
"""

from __future__ import annotations

import errno
import os
import select
import stat
import threading
from pathlib import Path

from ..errors import InputError

STREAM_IDLE_S = 10.0  # a stream that sends nothing for this long is given up
_SLICE_S = 0.1  # how often a waiting read looks for a stop request
_CHUNK = 1 << 20

_stop = threading.Event()
_stop_with: list[BaseException] = []


def wake_streams(exc: BaseException) -> None:
    """Make a read waiting on a stream raise ``exc`` (the CLI's stop-signal handler calls
    this with the KeyboardInterrupt it holds for a safe point: waiting is one)."""
    _stop_with[:] = [exc]
    _stop.set()


def held_stop() -> BaseException | None:
    """The stop signal held for a safe point (see :func:`wake_streams`), if any: a wait
    that may last (a stalled live source) raises it."""
    return _stop_with[0] if _stop.is_set() and _stop_with else None


def clear_stop() -> None:
    """Forget a held stop signal (a new command starts)."""
    _stop.clear()
    _stop_with.clear()


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else
    ``OSError`` (a FIFO, a device, a folder, a file too large): never blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"over {limit} bytes", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"over {limit} bytes", str(path))
    return data


def read_whole(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` (a regular file or a stream), refused past ``limit`` bytes
    (``what``: the kind of file, for the message); :class:`InputError` on failure."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer opens at once
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=path) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            if st.st_size > limit:
                raise InputError(f"file is {st.st_size / 2**30:.1f} GiB, over the limit of {limit / 2**30:.0f} GiB "
                                 f"for {what}", path=path)
            os.set_blocking(fd, True)
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(limit + 1)
        else:
            data = _read_stream(fd, limit, path)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=path) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"stream is over the limit of {limit / 2**30:.0f} GiB for {what}", path=path)
    return data


def _read_stream(fd: int, limit: int, path: Path) -> bytes:
    """Read a non-blocking stream to its end: poll in slices, give up when idle too long or
    when a stop signal came. A FIFO that never had a writer reports no event (not EOF)."""
    chunks: list[bytes] = []
    size, idle = 0, 0.0
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    while size <= limit:
        if held_stop() is not None:
            raise held_stop()
        if not poller.poll(int(_SLICE_S * 1000)):
            idle += _SLICE_S
            if idle >= STREAM_IDLE_S:
                what = "no writer came" if not chunks else "no more data came"
                raise InputError(f"is a stream (FIFO, pipe or device) and {what} in {STREAM_IDLE_S:.0f} s",
                                 path=path)
            continue
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            continue
        if not chunk:  # the writer closed it: the end
            break
        chunks.append(chunk)
        size += len(chunk)
        idle = 0.0
    return b"".join(chunks)

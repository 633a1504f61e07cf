"""Per-thread scratch buffers for map-sized arrays, reused from frame to frame.

Map-sized temporaries (a 32 x 57 x 19 float32 stack is 136 KiB) are above glibc's mmap
threshold: allocating one per step means fresh pages (page faults) on every frame, which
can cost more than the arithmetic. The parser writes such arrays into buffers kept per
thread and keyed by name, shape and dtype; a buffer is only valid until the next parse in
the same thread, so nothing that escapes ``parse`` may point into one.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()
# Buffers kept per thread (distinct shapes or names beyond this evict everything).
_MAX_BUFFERS = 32


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous buffer, the same one for the same (name, shape, dtype)."""
    cache = getattr(_local, "buffers", None)
    if cache is None:
        cache = _local.buffers = {}
    key = (name, tuple(int(s) for s in shape), np.dtype(dtype).str)
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= _MAX_BUFFERS:
            cache.clear()
        buf = cache[key] = np.empty(key[1], dtype)
    return buf

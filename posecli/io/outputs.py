"""Output paths: what posecli writes to, and checks that no output lands on an input or on
another output of the same run.

Outputs are regular files and folders that posecli creates (through a temporary name and a
rename, see :mod:`posecli.io.atomic`). Three kinds of existing path are different:

- a device, a FIFO or a path that leads through ``/proc`` (``/dev/null``, ``/dev/full``,
  ``/dev/stdout``, a named pipe): written straight to, never replaced by a file;
- a socket: refused (nothing can be written to it by opening it);
- a symbolic link to a regular file: the link stays, the file it points to is replaced.

Temporary names carry the writing process's id (``.NAME.<pid>-<random>.tmp``), so that a
later run on the same output removes the leftovers of a run that was killed
(:func:`posecli.io.atomic.sweep_stale`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import OutputConflict, OutputError, shown_path

_MAX_LINKS = 40  # as the kernel: more links than this in a chain is a loop


def _link_chain(path: Path) -> tuple[Path, bool]:
    """``path`` with symbolic links followed, and whether the chain passes through /proc."""
    via_proc = False
    current = Path(os.path.abspath(path))
    for _ in range(_MAX_LINKS):
        if str(current).startswith(("/proc/", "/dev/fd/")):
            via_proc = True
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or missing): the end of the chain
            return current, via_proc
        current = Path(os.path.abspath(current.parent / target))
    return current, via_proc


def stream_target(path: str | Path) -> bool:
    """True when output ``path`` must be written straight to, not replaced: it exists and is
    a device or a FIFO, or its links lead through /proc (``/dev/stdout``). Raises
    :class:`OutputError` for a socket."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return False
    if stat.S_ISSOCK(st.st_mode):
        raise OutputError("is a socket, not a file posecli can write", path=p)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return True
    if p.is_symlink():
        return _link_chain(p)[1]
    return False


def replace_target(path: str | Path) -> Path:
    """The regular file an atomic write to ``path`` replaces: ``path`` itself, or the file a
    symbolic link points to (so that the link stays)."""
    p = Path(path)
    if not p.is_symlink():
        return p
    end, _ = _link_chain(p)
    return end


def same_path(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` are the same file (links, ``..`` and hard links resolved;
    names compared case-insensitively only where the file system says they match)."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(inputs: Iterable[str | Path], outputs: Sequence[tuple[str, str | Path]]) -> None:
    """Raise :class:`OutputConflict` when an output would overwrite an input, or two outputs
    would be written to one path.

    ``outputs``: ``(what, path)`` pairs, ``what`` naming the parameter (e.g. ``out``).
    Outputs that are devices or FIFOs (``/dev/null``) are written straight to and may repeat.
    """
    outs = [(what, Path(p)) for what, p in outputs if p is not None]
    ins = [Path(p) for p in inputs]
    in_keys: dict[str, Path] = {}
    for p in ins:
        in_keys.setdefault(os.path.realpath(p), p)
    for what, out in outs:
        hit = in_keys.get(os.path.realpath(out))
        if hit is None and out.exists():
            hit = next((p for p in ins if same_path(p, out)), None)
        if hit is not None:
            same = os.path.abspath(hit) == os.path.abspath(out)
            raise OutputConflict(f"is an input; {what} would overwrite it" if same else
                                 f"{what} would overwrite the input {shown_path(hit)}", path=out, param=what)
    seen: dict[str, str] = {}
    for what, out in outs:
        try:
            if stream_target(out):
                continue
        except OutputError:
            continue  # reported when it is opened
        key = os.path.realpath(out)
        if key in seen:
            first = seen[key]
            both = f"both {first} and {what}" if first != what else f"{what} twice"
            raise OutputConflict(f"{both} would be written here; give them different names", path=out,
                                 param=(first, what))
        seen[key] = what


def unique_names(paths: Sequence[Path]) -> list[str]:
    """A distinct result name (without extension) for each input, in order.

    The input's stem (``x``); where two inputs share it (case-insensitively), their whole
    names (``x.jpg``, ``x.png``); where those are shared too (``a/x.jpg``, ``b/x.jpg``), the
    later ones get ``-2``, ``-3``... (``x.jpg-2``), in the order given.
    """
    stems: dict[str, int] = {}
    for p in paths:
        stems[p.stem.lower()] = stems.get(p.stem.lower(), 0) + 1
    names = [p.name if stems[p.stem.lower()] > 1 else p.stem for p in paths]
    used: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{name}-{n}"
        used.add(candidate.lower())
        out.append(candidate)
    return out

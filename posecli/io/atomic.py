"""Atomic outputs: files and folders that appear only when complete. The one home for
writing files safely: every writer of posecli goes through here.

Work in progress lives under hidden names beside its target (:func:`temp_name`:
``.NAME.<pid>-<token>.tmp``), so a rename puts it in place and a reader never sees half of it;
the process id lets a later run remove what a killed one left (:func:`sweep_stale`), and
every temporary file is registered until it is committed or dropped, so that
:func:`discard_pending` can remove them all when a run is cut short.

:class:`AtomicFile` for text or bytes written in one go; :func:`atomic_path` for writers that
want a file name (``keep_suffix`` where the extension picks the format); :func:`pending_name`,
:func:`commit_pending` and :func:`drop_pending` for a writer that runs for a while on its
own file (a video encoder); :func:`atomic_dir` for a folder of files, :func:`replace_dir` to
put a finished folder over an older one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import IO

from ..errors import OutputError
from .outputs import replace_target, stream_target
from .paths import utf8_clean


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- temporary names and leftovers of killed runs ------------------------------------------------
def _temp_stem(target: Path) -> str:
    """``target``'s name, or a stand-in for a name that is not UTF-8 (which native code cannot
    take) or too long to get a temporary suffix within the file system's 255 bytes."""
    if utf8_clean(target.name) and len(os.fsencode(target.name)) <= 200:
        return target.name
    return "posecli-" + hashlib.sha1(os.fsencode(target.name)).hexdigest()[:12]


def new_token() -> str:
    """A short random token for temporary names (8 hex digits)."""
    return uuid.uuid4().hex[:8]


def temp_name(path: str | Path, tag: str = "tmp", keep_suffix: bool = False) -> Path:
    """A fresh hidden name beside ``path`` for work in progress: ``.NAME.<pid>-<token>.TAG``
    (the process id lets a later run remove what a killed one left, :func:`sweep_stale`).

    ``keep_suffix``: ``...tmp.SUFFIX`` instead, for writers that choose the format by the
    extension (video encoders). ``tag``: ``tmp`` or ``old`` (a folder being replaced).
    The token is random, so two writers (a worker and its retry) never share a name.
    """
    path = Path(path)
    suffix = path.suffix if keep_suffix else ""
    return path.with_name(f".{_temp_stem(path)}.{os.getpid()}-{new_token()}.{tag}{suffix}")


def temp_prefix(target: str | Path) -> str:
    """The prefix :func:`tempfile.mkstemp` gets for ``target`` (see :func:`temp_name`)."""
    return f".{_temp_stem(Path(target))}.{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def sweep_stale(target: str | Path) -> list[Path]:
    """Remove temporary files and folders left beside ``target`` by runs that were killed
    (their process is gone); returns what was removed. Never raises."""
    target = Path(target)
    head = f".{_temp_stem(target)}."
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(head):
            continue
        tail = name[len(head):]
        pid, dash, rest = tail.partition("-")
        if not (dash and pid.isdigit() and (".tmp" in rest or rest.endswith(".old"))):
            continue
        if _alive(int(pid)):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


# Temporary files of AtomicFiles neither committed nor discarded yet. An interrupt can land
# anywhere (between creating a file and entering the code that would clean it up); the CLI
# calls discard_pending() on its way out, so no temporary file ever outlives a run.
_PENDING: set[Path] = set()


def discard_pending() -> None:
    """Remove every temporary output file still pending in this process."""
    for tmp in list(_PENDING):
        drop_pending(tmp)


def pending_name(target: str | Path, keep_suffix: bool = False) -> Path:
    """A temporary name beside ``target`` (:func:`temp_name`) for a writer that fills it
    itself, registered as pending until :func:`commit_pending` or :func:`drop_pending`;
    leftovers of killed runs beside ``target`` are removed first."""
    sweep_stale(target)
    tmp = temp_name(target, keep_suffix=keep_suffix)
    _PENDING.add(tmp)
    return tmp


def commit_pending(tmp: Path, target: str | Path, what: str = "results") -> None:
    """Rename the finished ``tmp`` over ``target``; :class:`OutputError` (``cannot write
    WHAT``) when that fails, and ``tmp`` is removed."""
    try:
        os.replace(tmp, target)
    except OSError as exc:
        drop_pending(tmp)
        raise OutputError(f"cannot write {what} ({exc.strerror})", path=target) from None
    _PENDING.discard(tmp)


def drop_pending(tmp: Path) -> None:
    """Remove the temporary ``tmp`` (if it is there) and forget it."""
    try:
        tmp.unlink()
    except OSError:
        pass
    _PENDING.discard(tmp)


class AtomicFile:
    """A text file that appears at ``path`` only when :meth:`commit` is called.

    Writes go to a temporary file in the same directory; :meth:`discard` removes it.
    ``path=None`` writes straight to stdout (nothing to rename), and so does a ``path``
    that is a device, a FIFO or ``/dev/stdout`` (see :mod:`posecli.io.outputs`); a symbolic
    link to a file keeps the link and replaces the file. Leftovers of killed runs beside
    ``path`` are removed first.
    """

    def __init__(self, path: str | Path | None, mode: str = "w"):
        self.path = None if path is None else Path(path)
        self._tmp: Path | None = None
        self.closed = False  # committed or discarded: nothing more to write
        if self.path is None:
            if sys.stdout is None:  # started with stdout closed
                raise OutputError("stdout is closed; give an output file")
            self.fh: IO = sys.stdout if "b" not in mode else sys.stdout.buffer
            return
        if stream_target(self.path):
            try:
                self.fh = open(self.path, mode, encoding=None if "b" in mode else "utf-8")  # noqa: SIM115
            except OSError as exc:
                raise OutputError(f"cannot write ({exc.strerror})", path=self.path) from None
            return
        target = replace_target(self.path)
        parent = target.parent
        sweep_stale(target)
        try:
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=parent)
        except FileNotFoundError:
            raise OutputError("output directory does not exist", path=parent) from None
        except OSError as exc:
            raise OutputError(f"cannot write here ({exc.strerror})", path=parent) from None
        self._tmp = Path(tmp)
        self._target = target
        _PENDING.add(self._tmp)
        try:
            os.chmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        except OSError:
            pass
        self.fh = os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")

    def write(self, data) -> None:
        if self.closed:
            raise OutputError("cannot write: the file was already committed or discarded", path=self.path)
        if isinstance(data, str) and not utf8_clean(data):
            # a file name that is not UTF-8 (Python holds its bytes as lone surrogates): written
            # as \udcXX escapes, which keep JSON valid and read back to the same name in Python
            data = data.encode("utf-8", "backslashreplace").decode("utf-8")
        try:
            self.fh.write(data)
        except BrokenPipeError:
            raise  # the reader of stdout went away; the CLI exits quietly
        except OSError as exc:
            self.discard()
            raise OutputError(f"write failed ({exc.strerror})", path=self.path) from None

    def commit(self) -> None:
        """Flush, sync and rename into place (nothing to do once committed or discarded)."""
        if self.closed:
            return
        if self._tmp is None:
            self.closed = self.path is not None
            try:
                self.fh.flush()
                if self.path is not None:
                    self.fh.close()
            except BrokenPipeError:
                raise
            except OSError as exc:  # /dev/full: the data did not get there
                if self.path is not None:
                    raise OutputError(f"write failed ({exc.strerror})", path=self.path) from None
            return
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self._tmp, self._target)
        except OSError as exc:
            self.discard()
            raise OutputError(f"write failed ({exc.strerror})", path=self.path) from None
        _PENDING.discard(self._tmp)
        self._tmp = None
        self.closed = True

    def discard(self) -> None:
        """Drop the temporary file; the target is left as it was (a device or FIFO has
        received what was written so far)."""
        if self._tmp is None:
            if self.path is not None and not self.closed:
                self.closed = True
                try:
                    self.fh.close()
                except OSError:
                    pass
            return
        self.closed = True
        try:
            self.fh.close()
        except OSError:
            pass
        try:
            self._tmp.unlink()
        except OSError:
            pass
        _PENDING.discard(self._tmp)
        self._tmp = None

    def __enter__(self) -> AtomicFile:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False):
    """A temporary path beside ``path`` for writers that want a file name (torch.save,
    onnx.save, onnxruntime's optimized graph: ``keep_suffix`` where the extension picks the
    format); renamed over ``path`` when the block succeeds, removed when it fails.
    Raises :class:`OutputError` when the directory cannot be written."""
    path = replace_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        suffix = ".tmp" + (path.suffix if keep_suffix else "")
        fd, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or exc})", path=path.parent) from None
    tmp = Path(name)
    _PENDING.add(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; outputs are not
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"write failed ({exc.strerror or exc})", path=path) from None
    finally:
        _PENDING.discard(tmp)
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """A temporary folder name beside ``path`` to fill (the block creates it); when the
    block succeeds the folder replaces ``path`` (:func:`replace_dir`). Whatever happens,
    the temporary folder does not outlive the block."""
    path = Path(path)
    sweep_stale(path)
    tmp = temp_name(path)
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def result_target(path: str | Path, folder: bool):
    """Where a writer should put the result ``path``: for a ``folder`` of files a temporary
    folder that replaces ``path`` when the block succeeds (:func:`atomic_dir`); a single
    file is ``path`` itself (its writer is atomic on its own)."""
    return atomic_dir(path) if folder else contextlib.nullcontext(Path(path))


def check_writable(path: str | Path, is_dir: bool = False) -> None:
    """Raise :class:`OutputError` unless files can be created for output ``path`` now.

    ``is_dir``: ``path`` is a directory of outputs (created if missing), else a file whose
    directory must exist. Checked by creating and removing a temporary file, which also
    catches read-only file systems and holds for root, unlike permission bits.
    """
    path = Path(path)
    if not is_dir and stream_target(path):
        return  # a device or FIFO: written straight to
    if is_dir:
        if path.exists() and not path.is_dir():
            raise OutputError("exists and is not a directory", path=path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output directory ({exc.strerror})", path=path) from None
        folder = path
    else:
        if path.is_dir():
            raise OutputError("is a directory; give a file name", path=path)
        folder = path.parent
        if not folder.exists():
            raise OutputError("output directory does not exist", path=folder)
        if not folder.is_dir():
            raise OutputError("is not a directory", path=folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".posecli-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"output directory is not writable ({exc.strerror})", path=folder) from None


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``, replacing an older ``dst`` (never leaving neither)."""
    old = None
    if dst.exists():
        old = temp_name(dst, "old")
        dst.rename(old)
    try:
        src.rename(dst)
    except OSError as exc:
        if old is not None:
            old.rename(dst)
        raise OutputError(f"cannot write results ({exc.strerror})", path=dst) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

"""Writers: posecli JSON, CMU OpenPose JSON, COCO keypoint results; streamed and atomic.

Every file is written to a temporary file in the same directory and renamed over the
target only when it is complete, so an existing output is never replaced by a partial
one. JSON for long videos is streamed item by item (memory stays flat).

Formats
-------
``posecli`` (native)::

    {"version": "posecli/1", "model": ..., "skeleton": {"name", "keypoints", "limbs"},
     "images" | "frames": [{"file", "width", "height", ["frame", "time"],
                            "people": [{"id", "score", "keypoints": {name: [x, y, score] | null}}]}],
     "complete": true}

``openpose``: CMU OpenPose's per-image JSON (version 1.3, ``pose_keypoints_2d`` flat
x, y, c with 0, 0, 0 for missing keypoints). ``coco``: a list of COCO keypoint results
(``image_id``, ``category_id`` 1, 17 keypoints in COCO order, ``score``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import IO

from .errors import OutputError
from .types import Frame, Person

FORMATS = ("posecli", "openpose", "coco")
NATIVE_VERSION = "posecli/1"
OPENPOSE_VERSION = 1.3


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------
def _r(v: float, nd: int) -> float | None:
    return round(float(v), nd) if math.isfinite(v) else None


def person_record(person: Person) -> dict:
    """Native record of one person: named keypoints ``[x, y, score]`` or null."""
    kps = {}
    for k, name in enumerate(person.skeleton.parts):
        if person.visible[k]:
            kps[name] = [_r(person.xy[k, 0], 2), _r(person.xy[k, 1], 2), _r(person.scores[k], 4)]
        else:
            kps[name] = None
    rec = {"score": _r(person.score, 4), "keypoints": kps}
    if person.track_id is not None:
        rec = {"id": int(person.track_id), **rec}
    return rec


def frame_record(frame: Frame) -> dict:
    """Native record of one image or video frame."""
    rec: dict = {"file": frame.source, "width": int(frame.size_wh[0]), "height": int(frame.size_wh[1])}
    if frame.index is not None:
        rec["frame"] = int(frame.index)
    if frame.timestamp is not None:
        rec["time"] = round(float(frame.timestamp), 4)
    rec["people"] = [person_record(p) for p in frame.people]
    return rec


def skeleton_record(skeleton) -> dict:
    return {
        "name": skeleton.name,
        "keypoints": list(skeleton.parts),
        "limbs": [list(l) for l in skeleton.limbs],
    }


def openpose_record(frame: Frame) -> dict:
    """CMU OpenPose 1.3 JSON for one frame."""
    people = []
    for p in frame.people:
        people.append({
            "person_id": [int(p.track_id) if p.track_id is not None else -1],
            "pose_keypoints_2d": [round(v, 3) for v in p.to_openpose()],
            "face_keypoints_2d": [],
            "hand_left_keypoints_2d": [],
            "hand_right_keypoints_2d": [],
            "pose_keypoints_3d": [],
            "face_keypoints_3d": [],
            "hand_left_keypoints_3d": [],
            "hand_right_keypoints_3d": [],
        })
    return {"version": OPENPOSE_VERSION, "people": people}


def coco_records(frame: Frame, image_id: int) -> list[dict]:
    """COCO keypoint results for one image (17 keypoints, 0, 0, 0 where missing)."""
    out = []
    for p in frame.people:
        kp = p.to_coco17()
        flat = []
        for x, y, s in kp:
            if math.isfinite(x):
                flat += [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
            else:
                flat += [0.0, 0.0, 0.0]
        out.append({"image_id": int(image_id), "category_id": 1, "keypoints": flat, "score": round(float(p.score), 4)})
    return out


def coco_image_id(path: str | Path, fallback: int) -> int:
    """COCO image id of a file: its numeric stem (``000000000785.jpg`` -> 785), else ``fallback``."""
    stem = Path(str(path)).stem
    return int(stem) if re.fullmatch(r"\d{1,18}", stem) else fallback


def openpose_filename(source: str | Path, index: int | None = None) -> str:
    """``<image>_keypoints.json``, or ``<video>_<12-digit frame>_keypoints.json``."""
    stem = Path(str(source)).stem
    if index is None:
        return f"{stem}_keypoints.json"
    return f"{stem}_{index:012d}_keypoints.json"


# ---------------------------------------------------------------------------------------------
# Atomic files
# ---------------------------------------------------------------------------------------------
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


# Temporary files of AtomicFiles neither committed nor discarded yet. An interrupt can land
# anywhere (between creating a file and entering the code that would clean it up); the CLI
# calls discard_pending() on its way out, so no temporary file ever outlives a run.
_PENDING: set[Path] = set()


def discard_pending() -> None:
    """Remove every temporary output file still pending in this process."""
    for tmp in list(_PENDING):
        try:
            tmp.unlink()
        except OSError:
            pass
        _PENDING.discard(tmp)


class AtomicFile:
    """A text file that appears at ``path`` only when :meth:`commit` is called.

    Writes go to a temporary file in the same directory; :meth:`discard` removes it.
    ``path=None`` writes straight to stdout (nothing to rename).
    """

    def __init__(self, path: str | Path | None, mode: str = "w"):
        self.path = None if path is None else Path(path)
        self._tmp: Path | None = None
        self.closed = False  # committed or discarded: nothing more to write
        if self.path is None:
            self.fh: IO = sys.stdout if "b" not in mode else sys.stdout.buffer
            return
        parent = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        except FileNotFoundError:
            raise OutputError("output directory does not exist", path=parent) from None
        except OSError as exc:
            raise OutputError(f"cannot write here ({exc.strerror})", path=parent) from None
        self._tmp = Path(tmp)
        _PENDING.add(self._tmp)
        try:
            os.chmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        except OSError:
            pass
        self.fh = os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")

    def write(self, data) -> None:
        if self.closed:
            raise OutputError("cannot write: the file was already committed or discarded", path=self.path)
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
            try:
                self.fh.flush()
            except OSError:
                pass
            return
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.discard()
            raise OutputError(f"write failed ({exc.strerror})", path=self.path) from None
        _PENDING.discard(self._tmp)
        self._tmp = None
        self.closed = True

    def discard(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        if self._tmp is None:
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

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """A temporary path beside ``path`` for writers that want a file name (torch.save,
    onnx.save); renamed over ``path`` when the block succeeds, removed when it fails.
    Raises :class:`OutputError` when the directory cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def check_writable(path: str | Path, is_dir: bool = False) -> None:
    """Raise :class:`OutputError` unless files can be created for output ``path`` now.

    ``is_dir``: ``path`` is a directory of outputs (created if missing), else a file whose
    directory must exist. Checked by creating and removing a temporary file, which also
    catches read-only file systems and holds for root, unlike permission bits.
    """
    path = Path(path)
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


def write_json_atomic(path: str | Path | None, obj) -> None:
    """Write one JSON document atomically (or to stdout when ``path`` is None)."""
    with AtomicFile(path) as f:
        f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False))
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# Streaming writers
# ---------------------------------------------------------------------------------------------
class JsonStream:
    """``{header..., "<key>": [item, item, ...], "complete": bool}`` written item by item.

    With ``header=None`` the document is a bare list. ``close(complete=False)`` still
    leaves valid JSON (marked incomplete) when ``keep_partial`` is set, else discards.
    """

    def __init__(self, path: str | Path | None, header: dict | None = None, key: str = "items"):
        self._file = AtomicFile(path)
        self._first = True
        self._started = False
        self._header = header
        self._key = key

    def _start(self) -> None:
        """Write the opening text (deferred, so a stream that fails early writes nothing)."""
        self._started = True
        if self._header is None:
            self._file.write("[")
        else:
            head = json.dumps(self._header, ensure_ascii=False)[:-1]
            self._file.write(f"{head}{', ' if self._header else ''}\"{self._key}\": [")

    def add(self, item) -> None:
        if not self._started:
            self._start()
        text = json.dumps(item, ensure_ascii=False, allow_nan=False)
        self._file.write(("\n" if self._first else ",\n") + text)
        self._first = False

    def close(self, complete: bool = True, keep_partial: bool = True, trailer: dict | None = None) -> None:
        """``trailer``: keys written after the list, before ``complete`` (not for bare lists)."""
        if not complete and not keep_partial:
            self._file.discard()
            return
        if self._file.closed:  # a failed write discarded it (and raised): nothing left to close
            return
        if not self._started:
            self._start()
        extra = "".join(f", {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in (trailer or {}).items())
        tail = "\n]" if self._header is None else f"\n]{extra}, \"complete\": {'true' if complete else 'false'}}}"
        self._file.write(tail + "\n")
        self._file.commit()

    def discard(self) -> None:
        """Drop everything (nothing reaches stdout if nothing was added)."""
        self._file.discard()


class ResultWriter:
    """Writes frames in one of :data:`FORMATS` to a file, a directory or stdout.

    ``out``: a file path, a directory (``openpose``: one file per frame), or None
    (stdout). ``kind``: ``images`` or ``frames`` (video), the native list's key.
    Call :meth:`add` per frame and :meth:`close` once.
    """

    def __init__(self, fmt: str, out: str | Path | None, *, model: str = "", skeleton=None,
                 kind: str = "images", per_file_dir: bool = False, source: dict | None = None):
        if fmt not in FORMATS:
            raise OutputError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
        self.fmt = fmt
        self.out = None if out is None else Path(out)
        self.per_file_dir = per_file_dir
        self._count = 0
        self._stream: JsonStream | None = None
        if fmt == "openpose" and per_file_dir:
            if self.out is None:
                raise OutputError("--format openpose with several frames needs --out DIRECTORY")
            self.out.mkdir(parents=True, exist_ok=True)
        elif fmt == "openpose":
            self._single: Frame | None = None
        elif fmt == "coco":
            self._stream = JsonStream(self.out, None)
        else:
            header = {"version": NATIVE_VERSION, "model": model}
            if skeleton is not None:
                header["skeleton"] = skeleton_record(skeleton)
            if source:
                header.update(source)
            self._stream = JsonStream(self.out, header, key=kind)

    def add(self, frame: Frame, image_id: int | None = None) -> None:
        self._count += 1
        if self.fmt == "posecli":
            self._stream.add(frame_record(frame))
        elif self.fmt == "coco":
            iid = image_id if image_id is not None else coco_image_id(frame.source, self._count)
            for rec in coco_records(frame, iid):
                self._stream.add(rec)
        elif self.per_file_dir:
            name = openpose_filename(frame.source, frame.index)
            write_json_atomic(self.out / name, openpose_record(frame))
        else:
            self._single = frame

    @property
    def count(self) -> int:
        """Frames added so far."""
        return self._count

    def discard(self) -> None:
        """Leave no output (a stream that never started writes nothing, even to stdout)."""
        if self._stream is not None:
            self._stream.discard()

    def close(self, complete: bool = True, keep_partial: bool = True, trailer: dict | None = None) -> None:
        """``trailer``: extra top-level keys of the native format (e.g. where decoding stopped)."""
        if self._stream is not None:
            self._stream.close(complete, keep_partial, trailer if self.fmt == "posecli" else None)
        elif self.fmt == "openpose" and not self.per_file_dir:
            if self._single is not None and (complete or keep_partial):
                write_json_atomic(self.out, openpose_record(self._single))

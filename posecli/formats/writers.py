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
(``image_id``, ``category_id`` 1, 17 keypoints in COCO order, ``score``). ``csv``: one row
per person and keypoint (:mod:`posecli.formats.csv`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import OutputError
from ..io.atomic import AtomicFile
from ..types import Frame
from .csv import CsvStream
from .layouts import DEFAULT_LAYOUT, check_layout
from .records import (
    FORMATS,
    NATIVE_VERSION,
    coco_image_id,
    coco_records,
    frame_record,
    openpose_filename,
    openpose_record,
    skeleton_record,
)


def write_json_atomic(path: str | Path | None, obj) -> None:
    """Write one JSON document atomically (or to stdout when ``path`` is None)."""
    with AtomicFile(path) as f:
        f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False))
        f.write("\n")


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
    ``layout``: the keypoint order of the ``openpose`` format (:mod:`posecli.formats.layouts`).
    ``angles``: the ``csv`` format also has each person's joint and segment angles (:mod:`posecli.angles`).
    Call :meth:`add` per frame and :meth:`close` once.
    """

    def __init__(self, fmt: str, out: str | Path | None, *, model: str = "", skeleton=None,
                 kind: str = "images", per_file_dir: bool = False, source: dict | None = None,
                 layout: str = DEFAULT_LAYOUT, angles: bool = False):
        if fmt not in FORMATS:
            raise OutputError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
        self.fmt = fmt
        self.layout = check_layout(layout)
        self.out = None if out is None else Path(out)
        self.per_file_dir = per_file_dir
        self._count = 0
        self._stream: JsonStream | CsvStream | None = None
        if fmt == "openpose" and per_file_dir:
            if self.out is None:
                raise OutputError("fmt='openpose' with several frames needs out=DIRECTORY", param="out")
            self.out.mkdir(parents=True, exist_ok=True)
        elif fmt == "openpose":
            self._single: Frame | None = None
        elif fmt == "coco":
            self._stream = JsonStream(self.out, None)
        elif fmt == "csv":
            self._stream = CsvStream(self.out, angles=angles)
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
        elif self.fmt == "csv":
            self._stream.add(frame)
        elif self.fmt == "coco":
            iid = image_id if image_id is not None else coco_image_id(frame.source, self._count)
            for rec in coco_records(frame, iid):
                self._stream.add(rec)
        elif self.per_file_dir:
            name = openpose_filename(frame.source, frame.index)
            write_json_atomic(self.out / name, openpose_record(frame, self.layout))
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
                write_json_atomic(self.out, openpose_record(self._single, self.layout))

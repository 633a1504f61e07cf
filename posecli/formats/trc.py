"""Pixel TRC files, one per tracked person, as Sports2D writes and reads them (``load_trc_px``).

A TRC (OpenSim's marker trajectories) is tab-separated: five header lines, then a row per frame::

    PathFileType  4  (X/Y/Z)  <file name>
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames
    <fps>     <fps>       <N>        <M>         px     <fps>         0                   <N>
    Frame#  Time  Nose  <tab><tab>  Neck ...
            X1  Y1  Z1  X2  Y2  Z2 ...
    0  0.0  x  y  0  x  y  0 ...

Sports2D's pixel files: X and Y are image pixels (x right, y down), Z is 0; markers carry
Sports2D's (OpenPose's) names (``RShoulder``; ``Hip``, the middle of the hips, is added when both
hips are found; see :func:`posecli.angles.markers`). A marker not found in a frame has empty
cells, which Sports2D's reader (pandas) takes for NaN; a frame where the person is absent has
every marker empty, so each file has every processed frame, with its time in seconds.

Sports2D recognises a pixel TRC by ``_px`` in its name: files are ``<stem>_px_person<ID>.trc``
with the person's track id (two digits at least). People are held in memory until the end
(about 0.5 kB per person and frame).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..angles import marker_xy, markers
from ..errors import OutputError
from ..io.atomic import AtomicFile
from ..types import Frame

TRC_SUFFIX = ".trc"
DEFAULT_FPS = 25.0  # the data rate written when the frames have no times


def trc_name(stem: str, track_id: int) -> str:
    """``<stem>_px_person<ID>.trc``, the name Sports2D's ``load_trc_px`` expects (``_px``)."""
    return f"{stem}_px_person{track_id:02d}{TRC_SUFFIX}"


class TrcWriter:
    """Collects tracked people frame by frame (:meth:`add`) and writes one TRC per track id into
    ``folder`` at :meth:`close` (each file atomically). People without an id are not written."""

    def __init__(self, folder: str | Path, stem: str, skeleton):
        self.folder = Path(folder)
        self.stem = stem
        self.markers = markers(skeleton)
        self.times: list[float] = []
        self.frames: list[int] = []
        self._people: dict[int, dict[int, np.ndarray]] = {}  # id -> row -> (M, 2) float32

    def add(self, frame: Frame) -> None:
        row = len(self.times)
        self.times.append(float(frame.timestamp) if frame.timestamp is not None else math.nan)
        self.frames.append(int(frame.index) if frame.index is not None else row)
        for person in frame.people:
            if person.track_id is None:
                continue
            xy = marker_xy(person)
            self._people.setdefault(int(person.track_id), {})[row] = np.array(
                [xy[m][:2] for m in self.markers], dtype=np.float32)

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._people)

    def close(self) -> list[Path]:
        """Write the files; returns their paths (none when nobody was tracked)."""
        if self._people:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create folder ({exc.strerror})", path=self.folder) from None
        paths = []
        for track_id in self.track_ids:
            path = self.folder / trc_name(self.stem, track_id)
            with AtomicFile(path) as f:
                f.write(self._text(path.name, self._people[track_id]))
            paths.append(path)
        return paths

    def _fps(self) -> float:
        steps = np.diff(np.asarray(self.times, float))
        steps = steps[np.isfinite(steps) & (steps > 0)]
        return float(1.0 / np.median(steps)) if steps.size else DEFAULT_FPS

    def _text(self, name: str, rows: dict[int, np.ndarray]) -> str:
        n, m, fps = len(self.times), len(self.markers), self._fps()
        rate = f"{fps:.6g}"
        lines = [
            f"PathFileType\t4\t(X/Y/Z)\t{name}",
            "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
            f"{rate}\t{rate}\t{n}\t{m}\tpx\t{rate}\t0\t{n}",
            "Frame#\tTime\t" + "\t\t\t".join(self.markers) + "\t\t\t",
            "\t\t" + "\t".join(f"X{i + 1}\tY{i + 1}\tZ{i + 1}" for i in range(m)),
        ]
        empty = "\t".join([""] * (3 * m))
        for row, (index, t) in enumerate(zip(self.frames, self.times)):
            time = f"{t:.4f}" if math.isfinite(t) else f"{row / fps:.4f}"
            xy = rows.get(row)
            cells = empty if xy is None else "\t".join(
                f"{x:.2f}\t{y:.2f}\t0" if math.isfinite(x) else "\t\t" for x, y in xy.tolist())
            lines.append(f"{index}\t{time}\t{cells}")
        return "\n".join(lines) + "\n"

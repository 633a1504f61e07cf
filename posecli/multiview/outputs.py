"""3D results on disk: posecli JSON, TRC (OpenSim, Pose2Sim, Blender add-ons), long CSV.

Each output's extension picks its format (:func:`format_of`). Files are written through
:class:`~posecli.io.atomic.AtomicFile` (a temporary name renamed when complete), frame by frame.

JSON (``"version": "posecli/1"``, ``"kind": "3d"``)::

    {"skeleton": {...}, "units": "m", "cameras": ["cam01", ...], "fps": 60.0,
     "frames": [{"frame": 0, "time": 0.0,
                 "people": [{"id": 0, "cameras": [0, 1, 3],
                             "keypoints": {"nose": [x, y, z, reprojection_px] | null, ...},
                             "views": {"nose": [0, 1], ...}}]}],
     "complete": true}

metres in the calibration's world frame; ``cameras`` of a person: the cameras it was seen in;
``views``: per keypoint, the cameras its point was triangulated from (indices into the top
``cameras``).

TRC: the marker file as Pose2Sim writes it: tab separated, five header lines, metres, Y up
(the calibration's Z-up world turned as Pose2Sim does: X, Y, Z = world Y, Z, X), markers
named as Pose2Sim's OpenSim setups expect (``r_shoulder`` -> ``RShoulder``, ``nose`` ->
``Nose``). A TRC holds one person, the one seen in the most frames (JSON and CSV hold
everyone), from its first to its last frame, each keypoint's gaps filled by linear
interpolation as Pose2Sim does (OpenSim's inverse kinematics stops at a frame without
markers); a keypoint never seen is ``NaN`` (OpenSim's reader miscounts empty fields). A name
with ``{id}`` (``walk_{id}.trc``) gives one TRC per person instead, as Pose2Sim writes them.

CSV: a row per frame, person and keypoint: ``frame, time, person, keypoint, x, y, z,
reprojection_px, cameras`` (cameras: names joined by ``+``); missing points have empty cells.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..formats.records import NATIVE_VERSION, skeleton_record
from ..io.atomic import AtomicFile
from ..skeleton import Skeleton
from .reconstruct import Frame3D, Person3D

FORMATS_3D = {".json": "json", ".trc": "trc", ".csv": "csv"}
CSV_COLUMNS_3D = ("frame", "time", "person", "keypoint", "x", "y", "z", "reprojection_px", "cameras")
DIGITS_M = 5  # 10 micrometres
DIGITS_PX = 2
ID_FIELD = "{id}"  # in a TRC output's name: one file per person
TRC_COLUMNS = "\t".join(("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
                         "OrigDataStartFrame", "OrigNumFrames"))


def format_of(path: str | Path) -> str:
    """``json``, ``trc`` or ``csv`` from the extension (:class:`OutputError` otherwise)."""
    fmt = FORMATS_3D.get(Path(path).suffix.lower())
    if fmt is None:
        raise OutputError(f"unknown 3D output type '{Path(path).suffix}' (use {', '.join(FORMATS_3D)})",
                          path=path)
    return fmt


def marker_name(part: str) -> str:
    """A posecli keypoint name as Pose2Sim's markers spell it (``l_big_toe`` -> ``LBigToe``)."""
    if part == "mid_hip":
        return "Hip"
    words = part.split("_")
    return "".join(w.upper() if len(w) == 1 else w.capitalize() for w in words)


def _r(value: float, digits: int):
    return round(float(value), digits) if math.isfinite(value) else None


def person_record_3d(person: Person3D, skeleton: Skeleton) -> dict:
    """The JSON record of one 3D person (see the module doc)."""
    keypoints, views = {}, {}
    for k, part in enumerate(skeleton.parts):
        xyz = person.xyz[k]
        if np.isfinite(xyz).all():
            err = _r(person.error_px[k], DIGITS_PX)
            keypoints[part] = [_r(v, DIGITS_M) for v in xyz] + [err]
            views[part] = [int(c) for c in np.flatnonzero(person.used[:, k])]
        else:
            keypoints[part] = None
    return {"id": person.id, "cameras": sorted(int(c) for c in person.members), "keypoints": keypoints,
            "views": views}


def write_outputs(paths: Sequence[str | Path], frames: Sequence[Frame3D], skeleton: Skeleton,
                  camera_names: Sequence[str], fps: float, extra: dict | None = None) -> None:
    """Every output in ``paths``; all of them appear, or (on an error) none is replaced."""
    files = []
    try:
        for path in paths:
            fmt = format_of(path)
            if fmt == "trc":
                for target, track in trc_targets(path, frames):
                    f = AtomicFile(target)
                    files.append(f)
                    _write_trc(f, Path(target).name, frames, skeleton, fps, track)
                continue
            f = AtomicFile(path)
            files.append(f)
            if fmt == "json":
                _write_json(f, frames, skeleton, camera_names, fps, extra or {})
            else:
                _write_csv(f, frames, skeleton, camera_names)
        for f in files:
            f.commit()
    finally:
        for f in files:
            f.discard()  # nothing to do once committed


def _write_json(f: AtomicFile, frames, skeleton, camera_names, fps, extra) -> None:
    head = {"version": NATIVE_VERSION, "kind": "3d", "skeleton": skeleton_record(skeleton), "units": "m",
            "cameras": list(camera_names), "fps": fps, **extra}
    f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "frames": [')
    for i, frame in enumerate(frames):
        rec = {"frame": int(frame.index), "time": round(float(frame.time), 4),
               "people": [person_record_3d(p, skeleton) for p in frame.people]}
        f.write(("\n" if i == 0 else ",\n") + json.dumps(rec, ensure_ascii=False, allow_nan=False))
    f.write('\n], "complete": true}\n')


def _frames_seen(frames: Sequence[Frame3D]) -> Counter:
    """Track id -> the number of frames it is in."""
    return Counter(p.id for frame in frames for p in frame.people if p.id is not None)


def main_track(frames: Sequence[Frame3D]) -> int | None:
    """The id seen in the most frames (None when nobody was)."""
    counts = _frames_seen(frames)
    return counts.most_common(1)[0][0] if counts else None


def trc_track(frames: Sequence[Frame3D], track: int | None,
              num_parts: int) -> tuple[list[Frame3D], np.ndarray]:
    """The frames from ``track``'s first to last appearance and its (T, K, 3) points there,
    each keypoint's gaps filled by linear interpolation (its ends held at the nearest value),
    as Pose2Sim fills them: OpenSim's inverse kinematics stops at a frame without markers."""
    rows = [n for n, f in enumerate(frames) if any(p.id == track for p in f.people)]
    if not rows:
        return [], np.zeros((0, num_parts, 3))
    span = list(frames[rows[0]: rows[-1] + 1])
    xyz = np.full((len(span), num_parts, 3), np.nan)
    for t, frame in enumerate(span):
        person = next((p for p in frame.people if p.id == track), None)
        if person is not None:
            xyz[t] = person.xyz
    times = np.arange(len(span))
    for k in range(num_parts):
        seen = np.isfinite(xyz[:, k]).all(axis=1)
        if seen.any() and not seen.all():
            for axis in range(3):
                xyz[:, k, axis] = np.interp(times, times[seen], xyz[seen, k, axis])
    return span, xyz


def trc_targets(path: str | Path, frames: Sequence[Frame3D]) -> list[tuple[Path, int | None]]:
    """``(file, track id)`` for a TRC output: the main person to ``path``; or, when its name
    holds ``{id}``, every person to its own file (ids by frames seen, most first)."""
    path = Path(path)
    if ID_FIELD not in path.name:
        return [(path, main_track(frames))]
    return [(path.with_name(path.name.replace(ID_FIELD, str(track))), track)
            for track, _ in _frames_seen(frames).most_common()]


def _write_trc(f: AtomicFile, name: str, frames, skeleton: Skeleton, fps: float, track: int | None) -> None:
    markers = [marker_name(p) for p in skeleton.parts]
    n = len(markers)
    span, xyz = trc_track(frames, track, n)
    rate = f"{fps:g}"
    first = span[0].index if span else 0
    lines = [f"PathFileType\t4\t(X/Y/Z)\t{name}",
             TRC_COLUMNS,
             f"{rate}\t{rate}\t{len(span)}\t{n}\tm\t{rate}\t{first + 1}\t{len(span)}",
             "Frame#\tTime\t" + "\t\t\t".join(markers) + "\t\t",
             "\t\t" + "\t".join(f"X{i + 1}\tY{i + 1}\tZ{i + 1}" for i in range(n))]
    f.write("\n".join(lines) + "\n")
    for frame, points in zip(span, xyz, strict=True):
        cells = [str(frame.index + 1), f"{frame.time:.6f}"]
        for x, y, z in points[:, [1, 2, 0]]:  # Z up -> Y up, as Pose2Sim turns it
            cells += ["NaN", "NaN", "NaN"] if not np.isfinite([x, y, z]).all() else \
                [f"{x:.{DIGITS_M}f}", f"{y:.{DIGITS_M}f}", f"{z:.{DIGITS_M}f}"]
        f.write("\t".join(cells) + "\n")


def _write_csv(f: AtomicFile, frames, skeleton: Skeleton, camera_names) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS_3D)
    f.write(buf.getvalue())
    for frame in frames:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for person in frame.people:
            for k, part in enumerate(skeleton.parts):
                xyz = person.xyz[k]
                if np.isfinite(xyz).all():
                    cams = "+".join(camera_names[c] for c in np.flatnonzero(person.used[:, k]))
                    err = _r(person.error_px[k], DIGITS_PX)
                    cells = [_r(v, DIGITS_M) for v in xyz] + ["" if err is None else err, cams]
                else:
                    cells = ["", "", "", "", ""]
                writer.writerow([frame.index, round(frame.time, 4), person.id, part, *cells])
        f.write(buf.getvalue())

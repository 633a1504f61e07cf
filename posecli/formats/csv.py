"""CSV results in long form: one row per person and keypoint, streamed and atomic.

Columns (:data:`CSV_COLUMNS`)::

    file, frame, time, person, id, person_score, keypoint, x, y, score

``frame`` and ``time`` (seconds) are set for video frames, empty for photos. ``person`` is
the person's position in its frame (0 = highest score), ``id`` the track id across video
frames (empty without tracking). Every person has one row per keypoint of the skeleton; a
missing keypoint has empty ``x``, ``y`` and ``score`` (never 0, 0). A frame without people
has one row with only ``file``, ``frame`` and ``time``, so "nobody there" and "not
processed" (``--step``, a stopped run) stay apart.

Long rather than wide (a column per keypoint coordinate): the columns are the same for
every skeleton (COCO-18, BODY-25, a custom model), a keypoint is selected by value
(``df[df.keypoint == "nose"]``) and pivoted to wide in one call when wanted
(``df.pivot_table(index=["frame", "person"], columns="keypoint", values=["x", "y"])``).

With angles (``angles=True``, ``--angles``) the file has a last column ``angle`` (degrees) and, after
each person's keypoint rows, one row per angle of :mod:`posecli.angles` (Sports2D's joint and
segment angles): ``keypoint`` holds the angle's name (``right knee``, ``trunk``), ``angle`` its
value (empty where a point is missing), ``x``, ``y`` and ``score`` are empty. Keypoint rows have
an empty ``angle``. ``df[df.angle.notna()]`` selects the angles.

Quoting is the csv module's (fields with commas, quotes or line breaks are quoted), so
Python's ``csv`` and ``pandas.read_csv`` read the file without options.

Text cells (``file``, ``keypoint``: from file names and a model's keypoint names) that a
spreadsheet would take for a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading single quote, as OWASP advises against CSV injection;
so does text that already starts with a quote, so that :func:`read_csv_frames` gives every
name back exactly. Number cells are never touched: a negative coordinate stays a number.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..angles import ANGLES, person_angles
from ..io.atomic import AtomicFile
from ..types import Frame

CSV_COLUMNS = ("file", "frame", "time", "person", "id", "person_score", "keypoint", "x", "y", "score")
ANGLE_COLUMN = "angle"
#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def text_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: ``'`` before a formula start (or a quote)."""
    text = str(text)
    return _QUOTE + text if text.startswith((*FORMULA_STARTS, _QUOTE)) else text


def _text_back(cell: str) -> str:
    """The text :func:`text_cell` was given."""
    return cell[1:] if cell.startswith(_QUOTE) and cell[1:].startswith((*FORMULA_STARTS, _QUOTE)) else cell


def _num(value: float, digits: int) -> float | str:
    """Rounded like the native JSON; an empty cell for NaN and infinities."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else ""


def csv_rows(frame: Frame, angles: bool = False) -> list[list]:
    """The rows of one image or video frame (see the module docstring); ``angles``: with the
    angle column and rows."""
    head = [
        text_cell(frame.source),
        "" if frame.index is None else int(frame.index),
        "" if frame.timestamp is None else round(float(frame.timestamp), 4),
    ]
    width = len(CSV_COLUMNS) + (1 if angles else 0)
    if not frame.people:
        return [head + [""] * (width - len(head))]
    rows = []
    for i, person in enumerate(frame.people):
        track = "" if person.track_id is None else int(person.track_id)
        score = _num(person.score, 4)
        visible = person.visible
        for k, name in enumerate(person.skeleton.parts):
            if visible[k]:
                cells = [_num(person.xy[k, 0], 2), _num(person.xy[k, 1], 2), _num(person.scores[k], 4)]
            else:
                cells = ["", "", ""]
            rows.append(head + [i, track, score, text_cell(name), *cells] + ([""] if angles else []))
        if angles:
            for name, value in person_angles(person).items():
                rows.append(head + [i, track, score, text_cell(name), "", "", "", _num(value, 2)])
    return rows


class CsvStream:
    """A CSV result written frame by frame into an :class:`AtomicFile` (memory stays flat).

    The header row goes out with the first frame (or at :meth:`close` when there was none).
    ``close(complete=False)`` keeps the rows of the frames done when ``keep_partial``.
    """

    def __init__(self, path: str | Path | None, angles: bool = False):
        self._file = AtomicFile(path)
        self._started = False
        self._angles = angles

    def _write_rows(self, rows) -> None:
        if not self._started:
            rows = [CSV_COLUMNS + ((ANGLE_COLUMN,) if self._angles else ()), *rows]
            self._started = True
        self._file.write(_csv_text(rows))

    def add(self, frame: Frame) -> None:
        self._write_rows(csv_rows(frame, self._angles))

    def close(self, complete: bool = True, keep_partial: bool = True, trailer: dict | None = None) -> None:
        """Commit the file (``trailer`` is for JSON formats and ignored here)."""
        if not complete and not keep_partial:
            self._file.discard()
            return
        if self._file.closed:
            return
        if not self._started:
            self._write_rows([])
        self._file.commit()

    def discard(self) -> None:
        self._file.discard()


def _csv_text(rows) -> str:
    """The rows, each ending in ``\\n``, a cell holding a CR or LF quoted. (With ``\\r\\n`` as its
    line end the csv module quotes both; with ``\\n`` alone Python 3.11 leaves a CR bare, which
    splits the row for a reader.) One writer for all the rows: it writes each row in one call."""
    lines: list[str] = []

    class _Lines:
        @staticmethod
        def write(line: str) -> None:
            lines.append(line[:-2] + "\n")

    csv.writer(_Lines, lineterminator="\r\n").writerows(rows)
    return "".join(lines)


def read_csv_frames(path: str | Path) -> list[dict]:
    """A CSV result back as plain records, one per frame in file order:
    ``{"file", "frame", "time", "people": [{"person", "id", "score", "keypoints": {name: [x, y, s] | None}}]}``
    (numbers as floats or ints, None for empty cells)."""
    frames: list[dict] = []
    index: dict[tuple, dict] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["file"], row["frame"], row["time"])
            rec = index.get(key)
            if rec is None:
                rec = {"file": _text_back(row["file"]), "frame": _cell(row["frame"], int), "time": _cell(row["time"], float),
                       "people": []}
                index[key] = rec
                frames.append(rec)
            if row["person"] == "" or (ANGLE_COLUMN in row and row["keypoint"] in ANGLES):
                continue  # nobody in the frame; an angle row
            n = int(row["person"])
            if len(rec["people"]) <= n:
                rec["people"].append({"person": n, "id": _cell(row["id"], int),
                                      "score": _cell(row["person_score"], float), "keypoints": {}})
            person = rec["people"][n]
            xyz = [_cell(row[c], float) for c in ("x", "y", "score")]
            person["keypoints"][_text_back(row["keypoint"])] = None if xyz[0] is None else xyz
    return frames


def _cell(text: str, kind):
    return None if text == "" else kind(text)

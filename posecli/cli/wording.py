"""How the CLI words library errors: Python parameters become the flags that set them.

Library messages name parameters as a call spells them (``device='cuda': ...``, ``give
out=DIRECTORY``); :func:`error_text` turns each ``name=value`` whose name is in
:data:`PARAM_FLAGS` into ``--flag value``, so the same error reads right in Python and on
the command line. The file name an error is about is never rewritten, except that a URL's
credentials are hidden (:func:`~posecli.io.urls.redact`) in the whole line.
"""

from __future__ import annotations

import re

from ..errors import shown_path
from ..io.urls import redact

#: Library parameter -> the command-line flag that sets it.
PARAM_FLAGS = {
    "model": "--model",
    "profile": "--profile",
    "device": "--device",
    "precision": "--precision",
    "threads": "--threads",
    "scales": "--scales",
    "flip": "--flip",
    "parser": "--parser",
    "fmt": "--format",
    "out": "--out",
    "render": "--render",
    "batch_size": "--batch-size",
    "start": "--start",
    "end": "--end",
    "step": "--step",
    "arch": "--arch",
    "init": "--init",
    "lr": "--lr",
    "epochs": "--epochs",
    "steps": "--steps",
    "runtime": "--runtime",
    "mode": "--mode",
    "height": "--height",
    "max_people": "--max-people",
    "follow": "--follow",
    "track": "--track",
    "duration": "--duration",
    "max_frames": "--max-frames",
    "fps": "--fps",
    "reconnect": "--reconnect",
    "timeout_s": "--timeout",
    "maps_dir": "--write-maps",
}
# name=VALUE with VALUE quoted, or bare up to a space or punctuation that ends a clause
_ASSIGNMENT = re.compile(r"(?<![\w.-])(" + "|".join(PARAM_FLAGS) + r")=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)")


def as_flags(text: str) -> str:
    """``text`` with every ``name=value`` of a known parameter written as ``--flag value``."""
    return _ASSIGNMENT.sub(lambda m: f"{PARAM_FLAGS[m[1]]} {m[2].strip(chr(39) + chr(34))}", text)


def error_text(error: BaseException) -> str:
    """A library error as the CLI reports it (``<file>: <message>``, parameters as flags)."""
    message = getattr(error, "message", None)
    if message is None:
        return redact(str(error))
    path = getattr(error, "path", None)
    return redact(f"{shown_path(path)}: {as_flags(message)}" if path else as_flags(message))

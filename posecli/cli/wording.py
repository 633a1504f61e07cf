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
    "offsets": "--offsets",
    "parser_options": "-P",
    "tracker": "-T",
    "keep_alpha": "--keep-alpha",
    "engine": "--engine",
    "address": "--address",
    "workers": "--workers",
    "source": "--from",
    "layout": "--layout",
    "trc_dir": "--trc",
    "angles": "--angles",
}
#: Library functions a message may tell the caller to run -> the command that runs them, and
#: the flags of their parameters (``download_model(precisions=['fp16'])`` ->
#: ``posecli models download --precision fp16``).
CALLS = {"download_model": ("posecli models download", {"precisions": "--precision", "source": "--from"}),
         "iter_video_poses": ("posecli video", {}), "list_models": ("posecli models list", {}),
         "evaluate_estimator": ("posecli eval", {})}
_CALL = re.compile(r"\b(" + "|".join(CALLS) + r")\(([^()]*)\)")
#: Settings a flag turns on or off: ``name=True``/``name=False`` read as the flag alone.
SWITCH_FLAGS = {
    ("track", "True"): "--track", ("track", "False"): "--no-track",
    ("offline", "True"): "--track offline", ("offline", "False"): "--track online",
    ("smooth", "True"): "--smooth", ("show", "True"): "--show", ("keep_alpha", "True"): "--keep-alpha",
    ("flip", "True"): "--flip", ("flip", "False"): "--no-flip",
    ("zoom", "True"): "--zoom", ("zoom", "False"): "--no-zoom",
}
_NAMES = sorted(set(PARAM_FLAGS) | {name for name, _ in SWITCH_FLAGS}, key=len, reverse=True)
# name=VALUE with VALUE quoted, or bare up to a space or punctuation that ends a clause
_ASSIGNMENT = re.compile(r"(?<![\w.-])(" + "|".join(_NAMES) + r")=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)")


def _flag(name: str, value: str) -> str:
    bare = value.strip(chr(39) + chr(34))
    if (name, bare) in SWITCH_FLAGS:
        return SWITCH_FLAGS[name, bare]
    return f"{PARAM_FLAGS[name]} {bare}" if name in PARAM_FLAGS else f"{name}={value}"


def _command(match: re.Match) -> str:
    """``download_model(precisions=['fp16'])`` -> ``posecli models download --precision fp16``."""
    command, flags = CALLS[match[1]]
    words = [command]
    for arg in filter(None, (a.strip() for a in match[2].split(","))):
        name, _, value = arg.partition("=")
        words += [flags.get(name, f"--{name}"), value.strip("[]'\"")]
    return " ".join(words)


def as_flags(text: str) -> str:
    """``text`` with every ``name=value`` of a known parameter written as ``--flag value``
    (``--flag`` alone for the settings of :data:`SWITCH_FLAGS`), and the library calls of
    :data:`CALLS` as the commands that make them."""
    return _ASSIGNMENT.sub(lambda m: _flag(m[1], m[2]), _CALL.sub(_command, text))


def _named_alone(text: str, param) -> str:
    """``text`` with the parameters an error declares (``param``) written as flags where the
    message names them alone (``out would overwrite it``)."""
    for name in (param,) if isinstance(param, str) else (param or ()):
        if name in PARAM_FLAGS:
            text = re.sub(rf"(?<![\w=.-]){re.escape(name)}(?![\w=])", PARAM_FLAGS[name], text)
    return text


def error_text(error: BaseException) -> str:
    """A library error as the CLI reports it (``<file>: <message>``, parameters as flags)."""
    message = getattr(error, "message", None)
    if message is None:
        return redact(str(error))
    message = _named_alone(message, getattr(error, "param", None))
    path = getattr(error, "path", None)
    return redact(f"{shown_path(path)}: {as_flags(message)}" if path else as_flags(message))

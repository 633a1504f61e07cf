"""Typed errors raised by the posecli library.

The library never prints; it raises one of these. The CLI turns them into a one-line
``Error: <file>: <what is wrong>`` and exit code 1. Messages name Python parameters the
way a call spells them (``device='cuda': ...``, ``use precision='fp32'``); the CLI words
them as the flags that set them (``--device cuda: ...``).
"""

from __future__ import annotations

import os
from pathlib import Path


def first_line(exc: BaseException, limit: int | None = 200, default: str | None = None) -> str:
    """The first line of ``exc``'s text, at most ``limit`` characters (None: all of it;
    runtimes put a trace after it); ``default`` (else the exception's type name) when it
    has no text."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else (default or type(exc).__name__)


def shown_path(path: str | Path) -> str:
    """A file name as one printable line: bytes that are not UTF-8 as ``\\xff``, control
    characters (a newline in a name) as ``\\n``, ``\\x1b``."""
    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class PoseError(Exception):
    """Base class of every error posecli raises on purpose.

    ``path`` (optional) names the file the error is about; ``str(error)`` is then
    ``"<path>: <message>"`` so that callers can report it on one line. ``param``
    (optional) names the parameter whose value is wrong (``"device"``), or a tuple of the
    parameters that clash; where the message names one alone (``out would overwrite it``),
    the CLI words it as its flag.
    """

    def __init__(self, message: str, path: str | Path | None = None, *, param: str | tuple[str, ...] | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.param = param
        super().__init__(f"{shown_path(self.path)}: {message}" if self.path else message)


class InputError(PoseError):
    """An input (image, video, folder) is missing, unreadable or not what it claims to be."""


class ModelError(PoseError):
    """A model is missing, is not ONNX, lacks metadata, or does not match its skeleton."""


class DeviceError(PoseError):
    """The requested execution device (CUDA, TensorRT) cannot be used."""


class OutputError(PoseError):
    """An output file or directory cannot be written."""


class OutputConflict(OutputError):
    """An output would overwrite an input, or two outputs of one run share a path (a usage
    mistake: the CLI exits 2 before any work)."""


class ConfigError(PoseError, ValueError):
    """A setting, or a combination of settings, that cannot work (a field of a config or
    options object; ``param`` names it). The CLI reports it as a usage mistake (exit 2)."""


class ParserError(PoseError):
    """Maps given to the parser have the wrong shape or layout."""


class MissingExtraError(PoseError):
    """An optional dependency is not installed; the message says what to pip install."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.module = module
        self.extra = extra
        self.purpose = purpose
        # The extra's own requirements install the same way from a wheel, a checkout or an index;
        # 'posecli[extra]' only where posecli itself comes from a package index.
        reqs = " ".join(f"'{r}'" for r in extra_requirements(extra))
        plain = f"pip install {reqs} or " if reqs else ""
        super().__init__(
            f"{purpose} needs the '{module}' package: {plain}pip install 'posecli[{extra}]'"
        )


def error_class(name: str) -> type[PoseError]:
    """The :class:`PoseError` subclass called ``name`` (an error rebuilt from its class name
    in another process); :class:`PoseError` for any other name."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, PoseError) and cls is not MissingExtraError:
        return cls
    return PoseError


def extra_requirements(extra: str) -> list[str]:
    """The requirements of posecli's optional ``extra`` as installed metadata lists them
    (``["openvino>=2024.0", "onnx>=1.15"]`` for ``"import"``); empty when unknown."""
    import re
    from importlib import metadata

    try:
        requires = metadata.requires("posecli") or []
    except metadata.PackageNotFoundError:
        return []
    pattern = re.compile(r"""extra\s*==\s*["']""" + re.escape(extra) + r"""["']""")
    out = []
    for req in requires:
        spec, _, marker = req.partition(";")
        if pattern.search(marker) and not spec.strip().startswith("posecli"):
            out.append(spec.strip())
    return out

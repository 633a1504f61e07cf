"""Reading a user's JSON file with limits: its size, and how deeply it nests.

A hostile or broken file (a gigabyte of ``[``, ten thousand nested lists) must not end in a
MemoryError or a RecursionError far from where it was read: :func:`read_json` reports it
as the error type the caller names, with the file's name, in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError, PoseError

#: Deepest nesting of lists and objects accepted (COCO annotations and posecli's own files
#: nest 4 or 5 deep; Python's own recursion gives out near 1000).
MAX_JSON_DEPTH = 64


def json_depth(obj) -> int:
    """How deeply lists and dicts nest in ``obj`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def read_json(path: str | Path, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH,
              error: type[PoseError] = InputError, what: str = "JSON file"):
    """The JSON value in ``path``; ``error`` naming the file when it cannot be read, is larger
    than ``max_bytes``, is not UTF-8 JSON, or nests deeper than ``max_depth``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"no such {what}", path=path) from None
    except OSError as exc:
        raise error(f"cannot read ({exc.strerror or exc})", path=path) from None
    if len(raw) > max_bytes:
        raise error(f"larger than {max_bytes / 1e6:g} MB: not a {what}", path=path)
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(f"not UTF-8 text: not a {what}", path=path) from None
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from None
    except RecursionError:
        raise error(f"nested more than {max_depth} levels deep: not a {what}", path=path) from None
    if json_depth(value) > max_depth:
        raise error(f"nested more than {max_depth} levels deep: not a {what}", path=path)
    return value

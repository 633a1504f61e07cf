"""Reading arrays from a user's ``.npz`` with limits checked before anything is allocated.

An ``.npz`` is a zip of ``.npy`` files, each with a header declaring its dtype and shape.
A hostile file can declare a shape of exabytes, or be a zip bomb (a small member that
inflates to gigabytes): :func:`read_npz` reads each header first and refuses a member whose
declared shape or uncompressed size is over its limit, naming the file, before NumPy
allocates memory for it. Pickled objects are never loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError


def _header(member) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` declared by an ``.npy`` stream, read without its data."""
    fmt = np.lib.format
    version = fmt.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(member)
    else:
        shape, fortran, dtype = fmt.read_array_header_2_0(member)
    return tuple(int(n) for n in shape), bool(fortran), np.dtype(dtype)


def read_npz(path: str | Path, limits: dict[str, int], what: str = "file") -> dict[str, np.ndarray]:
    """The arrays named in ``limits`` (name -> most bytes it may hold) from the ``.npz`` at
    ``path``. :class:`InputError` naming the file when one is missing, is an object array, or
    declares (in its header or in the zip) more bytes than its limit; other members are not
    read. ``what`` names the kind of file in messages."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            out = {}
            for name, limit in limits.items():
                try:
                    info = archive.getinfo(name + ".npy")
                except KeyError:
                    raise InputError(f"not a {what}: no '{name}' array", path=path) from None
                if info.file_size > limit + 4096:  # the .npy header is at most a few KB
                    raise InputError(f"'{name}' inflates to {info.file_size} bytes, more than the {limit} "
                                     f"a {what} holds", path=path)
                with archive.open(info) as member:
                    shape, fortran, dtype = _header(member)
                    if dtype.hasobject:
                        raise InputError(f"'{name}' holds Python objects: not a {what}", path=path)
                    count = int(np.prod(shape, dtype=object))  # exact: no overflow for lying shapes
                    if count * dtype.itemsize > limit:
                        raise InputError(f"'{name}' declares shape {shape} of {dtype}, more than the {limit} "
                                         f"bytes a {what} holds", path=path)
                    out[name] = _read_data(member, shape, fortran, dtype, path, name)
            return out
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        text = f"not a {what} ({type(exc).__name__}: {exc})".splitlines()[0]
        raise InputError(text, path=path) from None


def _read_data(member, shape, fortran: bool, dtype: np.dtype, path: Path, name: str) -> np.ndarray:
    """The array body that follows the header (in C or Fortran order, as the header says)."""
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    data = member.read(size)
    if len(data) != size:
        raise InputError(f"'{name}' is cut short ({len(data)} of {size} bytes)", path=path)
    flat = np.frombuffer(data, dtype=dtype)
    return (flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)).copy()
